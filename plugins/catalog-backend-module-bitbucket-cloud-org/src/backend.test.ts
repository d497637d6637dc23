import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  coreServices,
  createBackendModule,
  createServiceFactory,
  SchedulerService,
} from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import authPlugin from '@backstage/plugin-auth-backend';
import catalogPlugin from '@backstage/plugin-catalog-backend';
import authModuleBitbucketProvider from '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider';
import {
  BitbucketCloudEmulator,
  startEmulator,
} from '@internal/bitbucket-cloud-emulator';
import request from 'supertest';
import catalogModuleBitbucketCloudOrg, {
  bitbucketCloudOrgEntityProviderTransformsExtensionPoint,
  defaultBitbucketCloudUserTransformer,
} from './index';
import {
  ACME,
  captureLogger,
  CONSUMER,
  LogLine,
  PARTNERS,
  PLATFORM,
} from './__testUtils__/world';

// The whole story: the catalog with this module imports the emulator's
// workspace members, and the auth backend with the Bitbucket sign-in module
// signs them in, with no hand-written User.

const APP = 'http://localhost:3000';
const JANE = '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}';
const BOB = '{8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48}';
const CAROL = '{c27d5e93-0f6a-4b18-8e34-91b7a2c6d05f}';
const DORA = '{d0a7e3b1-5c2f-4e8a-9b6d-1f4c7a2e9b30}';
const TASK = 'BitbucketCloudOrgEntityProvider:demo:refresh';
const BIG_TASK = 'BitbucketCloudOrgEntityProvider:big:refresh';
const BIG = {
  slug: 'big',
  name: 'Big Co',
  uuid: '{b16b16b1-6b16-4b16-8b16-b16b16b16b16}',
  role: 'member' as const,
};
/** 2,000 members of "big", whose Group's member-uuids is 2,000 × 38 characters and 1,999 commas. */
const BIG_MEMBERS = Array.from({ length: 2000 }, (_, i) => {
  const digits = String(i + 1).padStart(12, '0');
  return {
    uuid: `{b0000000-0000-4000-8000-${digits}}`,
    accountId: `557058:big-${i + 1}`,
    nickname: `big${i + 1}`,
    displayName: `Big ${i + 1}`,
    emails: [],
    workspaces: [BIG],
  };
});

// Dora's User is hand-written, in an org-data file the catalog reads; the
// import must leave it alone (no second User with her uuid).
const ORG_DATA = join(mkdtempSync(join(tmpdir(), 'org-data-')), 'users.yaml');
writeFileSync(
  ORG_DATA,
  `apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: dora
  annotations:
    bitbucket.org/user-id: '${DORA.toUpperCase()}'
spec:
  memberOf: []
`,
);

function person(uuid: string, name: string, workspaces = [ACME]) {
  return {
    uuid,
    accountId: `557058:${name}`,
    nickname: name,
    displayName: `${name[0].toUpperCase()}${name.slice(1)}`,
    emails: [{ email: `${name}@example.com`, primary: true, confirmed: true }],
    workspaces,
  };
}

describe('the catalog module and the Bitbucket sign-in module in one backend', () => {
  const realAgent = http.globalAgent;
  let emulator: BitbucketCloudEmulator;
  let backend: Awaited<ReturnType<typeof startTestBackend>>;
  let scheduler: SchedulerService;
  const logs: LogLine[] = [];

  beforeAll(async () => {
    // The catalog client (cross-fetch) calls this backend at localhost, a
    // name the Backstage CLI's Jest guard refuses to resolve; let that one
    // name through to the loopback address, and nothing else.
    http.globalAgent = new http.Agent({
      lookup: (hostname: string, options: any, callback: any) => {
        if (hostname !== 'localhost') {
          callback(new Error('Network requests are not allowed in tests'));
        } else if (options?.all) {
          callback(null, [{ address: '127.0.0.1', family: 4 }]);
        } else {
          callback(null, '127.0.0.1', 4);
        }
      },
    });
    emulator = await startEmulator({
      seed: {
        consumers: [
          {
            key: CONSUMER.key,
            secret: CONSUMER.secret,
            callbackUrl: 'http://localhost',
            permissions: ['account', 'email', 'team'],
            workspaces: ['acme', 'platform', 'big'],
          },
        ],
        users: [
          person(JANE, 'jane', [ACME, PLATFORM]),
          person(BOB, 'bob'),
          person(CAROL, 'carol', [PARTNERS]),
          person(DORA, 'dora'),
          ...BIG_MEMBERS,
        ],
      },
    });
    backend = await startTestBackend({
      features: [
        createServiceFactory({
          service: coreServices.rootLogger,
          deps: {},
          factory: () => captureLogger(logs),
        }),
        catalogPlugin,
        catalogModuleBitbucketCloudOrg,
        // "big" imports no User, only its Group: the test is about the Group
        createBackendModule({
          pluginId: 'catalog',
          moduleId: 'test-no-big-users',
          register(reg) {
            reg.registerInit({
              deps: {
                org: bitbucketCloudOrgEntityProviderTransformsExtensionPoint,
              },
              async init({ org }) {
                org.setUserTransformer(async (m, ctx) =>
                  m.workspaces.every(w => w.slug === 'big')
                    ? undefined
                    : defaultBitbucketCloudUserTransformer(m, ctx),
                );
              },
            });
          },
        }),
        authPlugin,
        authModuleBitbucketProvider,
        createBackendModule({
          pluginId: 'catalog',
          moduleId: 'test-scheduler-probe',
          register(reg) {
            reg.registerInit({
              deps: { s: coreServices.scheduler },
              async init({ s }) {
                scheduler = s;
              },
            });
          },
        }),
        mockServices.rootConfig.factory({
          data: {
            app: { baseUrl: APP },
            catalog: {
              locations: [{ type: 'file', target: ORG_DATA }],
              rules: [{ allow: ['User', 'Group', 'Location'] }],
              providers: {
                bitbucketCloudOrg: {
                  demo: {
                    workspaces: ['acme', 'platform'],
                    clientId: CONSUMER.key,
                    clientSecret: CONSUMER.secret,
                    baseUrl: emulator.url,
                    apiBaseUrl: emulator.apiBaseUrl,
                    // manual: the test runs it
                    schedule: {
                      frequency: { trigger: 'manual' },
                      timeout: 'PT1M',
                    },
                  },
                  big: {
                    workspaces: ['big'],
                    clientId: CONSUMER.key,
                    clientSecret: CONSUMER.secret,
                    baseUrl: emulator.url,
                    apiBaseUrl: emulator.apiBaseUrl,
                    schedule: {
                      frequency: { trigger: 'manual' },
                      timeout: 'PT1M',
                    },
                  },
                },
              },
            },
            auth: {
              providers: {
                bitbucket: {
                  development: {
                    clientId: CONSUMER.key,
                    clientSecret: CONSUMER.secret,
                    baseUrl: emulator.url,
                    apiBaseUrl: emulator.apiBaseUrl,
                    // by uuid (acme, platform, partners); collaborators
                    // pass so that Carol reaches the catalog step
                    allowedWorkspaces: [
                      '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
                      '{5c9d2e7b-1f4a-4c63-9e08-b3a6d1f7c245}',
                      '{a81f6c3e-4d29-4b75-8c1a-e09d7b3f5a62}',
                    ],
                    minimumWorkspaceRole: 'collaborator',
                    workspaceOwnership: { enabled: true },
                    signIn: {
                      resolvers: [
                        { resolver: 'userIdMatchingUserEntityAnnotation' },
                      ],
                    },
                  },
                },
              },
            },
          },
        }),
      ],
    });
  });

  beforeAll(async () => {
    // the org-data file is in the catalog before the first import
    await catalogEntity('user:default/dora');
  });

  afterAll(async () => {
    await backend?.stop();
    await emulator?.close();
    http.globalAgent = realAgent;
  });

  /** Waits until the catalog serves the entity (processing and stitching are asynchronous). */
  async function catalogEntity(ref: string, present = true) {
    const [kind, rest] = ref.split(':');
    const [namespace, name] = rest.split('/');
    for (let i = 0; i < 100; i++) {
      const res = await request(backend.server)
        .get(`/api/catalog/entities/by-name/${kind}/${namespace}/${name}`)
        .set('Authorization', mockCredentials.user.header());
      if ((res.status === 200) === present) return res.body;
      await new Promise(r => setTimeout(r, 100));
    }
    throw new Error(`${ref} is ${present ? 'not' : 'still'} in the catalog`);
  }

  async function signIn(uuid: string) {
    const agent = request.agent(backend.server);
    const start = await agent.get(
      `/api/auth/bitbucket/start?env=development&flow=popup&origin=${encodeURIComponent(
        APP,
      )}&scope=account`,
    );
    expect(start.status).toBe(302);
    const back = new URL(await emulator.authorize(start.header.location, uuid));
    const frame = await agent.get(`${back.pathname}${back.search}`);
    const data = frame.text.match(/decodeURIComponent\('(.+?)'\)/)?.[1];
    return JSON.parse(decodeURIComponent(data!));
  }

  it('imports the members and signs Jane in as her imported User, with her workspaces', async () => {
    await scheduler.triggerTask(TASK);
    const jane = await catalogEntity(
      'user:default/3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15',
    );
    expect(jane.metadata.annotations['bitbucket.org/user-id']).toBe(JANE);
    // the catalog keeps the provenance as the provider wrote it
    expect(jane.metadata.annotations).toMatchObject({
      'backstage.io/managed-by-location': 'bitbucket-cloud-org:demo',
      'backstage.io/managed-by-origin-location': 'bitbucket-cloud-org:demo',
      'backstage.io/view-url': `${emulator.url}/%7B3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15%7D/`,
    });
    expect(jane.relations).toEqual(
      expect.arrayContaining([
        { type: 'memberOf', targetRef: 'group:default/acme' },
        { type: 'memberOf', targetRef: 'group:default/platform' },
      ]),
    );
    const acme = await catalogEntity('group:default/acme');
    expect(acme.relations).toEqual(
      expect.arrayContaining([
        {
          type: 'hasMember',
          targetRef: 'user:default/3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15',
        },
        {
          type: 'hasMember',
          targetRef: 'user:default/8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48',
        },
      ]),
    );

    const message = await signIn(JANE);
    expect(message.response?.backstageIdentity?.identity).toEqual({
      type: 'user',
      userEntityRef: 'user:default/3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15',
      ownershipEntityRefs: expect.arrayContaining([
        'user:default/3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15',
        'group:default/acme',
        'group:default/platform',
      ]),
    });
    // workspaceOwnership names the very groups the catalog holds
    expect(
      new Set(message.response.backstageIdentity.identity.ownershipEntityRefs),
    ).toEqual(
      new Set([
        'user:default/3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15',
        'group:default/acme',
        'group:default/platform',
      ]),
    );
  });

  it('does not import a member of a workspace that is not configured', async () => {
    const message = await signIn(CAROL);
    expect(message.error?.message).toContain(
      'no matching User was found in the Backstage catalog',
    );
  });

  it('removes a member who left on the next run, and the sign-in stops', async () => {
    const before = await signIn(BOB);
    expect(before.error).toBeUndefined();
    expect(before.response?.backstageIdentity?.identity.userEntityRef).toBe(
      'user:default/8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48',
    );
    emulator.updateUser(BOB, { workspaces: [] });
    await scheduler.triggerTask(TASK);
    await catalogEntity(
      'user:default/8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48',
      false,
    );
    // the sign-in reuses one catalog answer for 5 s (the auth module's
    // catalogMembership.ts): past it, the new listing no longer has him, the
    // miss goes to Bitbucket, and the allow-list refuses him there
    await new Promise(resolve => setTimeout(resolve, 5_100));
    expect((await signIn(BOB)).error?.message).toContain(
      'is not a member of a Bitbucket workspace that may sign in to this portal',
    );
    expect(
      logs.filter(
        l =>
          l.level === 'info' &&
          l.message.startsWith("Bitbucket Cloud org provider 'demo'"),
      ),
    ).toEqual([
      {
        level: 'info',
        message: expect.stringMatching(
          /^Bitbucket Cloud org provider 'demo' imported 2 users and 2 groups from the workspaces acme, platform/,
        ),
      },
      {
        level: 'info',
        message: expect.stringMatching(
          /^Bitbucket Cloud org provider 'demo' imported 1 user and 2 groups/,
        ),
      },
    ]);
  }, 30_000);

  it('leaves a hand-written User alone: Dora signs in as user:default/dora, the one User with her uuid', async () => {
    await scheduler.triggerTask(TASK);
    // the run's entities are processed together: once Jane's User is there,
    // so would be a second User for Dora
    await catalogEntity('user:default/3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15');
    await new Promise(r => setTimeout(r, 1000));
    const message = await signIn(DORA);
    expect(message.error).toBeUndefined();
    expect(message.response.backstageIdentity.identity.userEntityRef).toBe(
      'user:default/dora',
    );
    const acme = await catalogEntity('group:default/acme');
    expect(acme.metadata.annotations['bitbucket.org/member-uuids']).toContain(
      DORA,
    );
    const byUuid = await request(backend.server)
      .get(
        `/api/catalog/entities/by-query?filter=kind=user,metadata.annotations.bitbucket.org/user-id=${encodeURIComponent(
          DORA,
        )}`,
      )
      .set('Authorization', mockCredentials.user.header());
    expect(byUuid.body.items.map((e: any) => e.metadata.name)).toEqual([
      'dora',
    ]);
    expect(logs).toContainEqual({
      level: 'warn',
      message: `Bitbucket Cloud org provider 'demo' wrote no User for 1 account that a User of another source already claims (same bitbucket.org/user-id): ${DORA} (user:default/dora). They stay in their workspace Groups' member uuids and sign in as those Users; to let this provider manage them, remove those Users from their source.`,
    });
  }, 20_000);

  it("accepts a workspace Group of 2,000 members: member-uuids passes the catalog's validation", async () => {
    await scheduler.triggerTask(BIG_TASK);
    const big = await catalogEntity('group:default/big');
    const value = big.metadata.annotations['bitbucket.org/member-uuids'];
    expect(value).toHaveLength(2000 * 38 + 1999);
    expect(value.split(',')).toEqual(
      BIG_MEMBERS.map(m => m.uuid.toLowerCase()).sort(),
    );
    expect(big.metadata.annotations['bitbucket.org/members-listed-at']).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
    );
  }, 20_000);
});
