import { mockServices } from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import { ConfigReader } from '@backstage/config';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import { SeedUser } from '@internal/bitbucket-cloud-emulator';
import { JsonObject } from '@backstage/types';
import {
  CatalogWorld,
  importedGroup,
  startCatalogWorld,
} from './__testUtils__/catalogWorld';
import { captureLogger, LogLine } from './__testUtils__/backend';
import { CatalogMembership, toImportedGroup } from './catalogMembership';
import { readBitbucketProviderSettings } from './config';

// The workspace check answered from the Groups that the Bitbucket Cloud org
// import wrote (the contract of issue 19), against a real catalog backend
// and the emulator.

jest.setTimeout(60_000);

const ACME_UUID = '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}';
const ACME = { slug: 'acme', uuid: ACME_UUID, role: 'member' as const };

const JANE: SeedUser = {
  uuid: '{4f1c2b7a-8d3e-4a5b-9c6d-7e8f9a0b1c2d}',
  accountId: '557058:4f1c2b7a-8d3e-4a5b-9c6d-7e8f9a0b1c2d',
  nickname: 'jdoe',
  displayName: 'Jane Doe',
  emails: [{ email: 'jane.doe@example.com', primary: true, confirmed: true }],
  workspaces: [ACME],
};
const MALLORY: SeedUser = {
  uuid: '{00000000-1111-4222-8333-444444444444}',
  accountId: '557058:00000000-1111-4222-8333-444444444444',
  nickname: 'mallory',
  displayName: 'Mallory',
  emails: [{ email: 'mallory@evil.example', primary: true, confirmed: true }],
};

const NOT_A_MEMBER = (who: SeedUser) =>
  `Your Bitbucket account ${who.displayName} (${who.uuid}) is not a member of a Bitbucket workspace that may sign in to this portal. Ask your Backstage admin which workspace to join, or sign in with another Bitbucket account.`;

/** The User the import writes for a member (the resolver needs one). */
function importedUser(who: SeedUser): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'User',
    metadata: {
      name: who.nickname,
      namespace: 'default',
      annotations: {
        'backstage.io/managed-by-location': 'bitbucket-cloud-org:test',
        'backstage.io/managed-by-origin-location': 'bitbucket-cloud-org:test',
        'bitbucket.org/user-id': who.uuid,
      },
    },
    spec: { memberOf: [] },
  };
}

/** The acme Group, pinned to the name `engineering` (not the slug). */
const acmeGroup = (members: string[], listedAt = Date.now()) =>
  importedGroup({
    name: 'engineering',
    workspaceUuid: ACME_UUID,
    slug: 'acme',
    members,
    listedAt,
  });

const PROVIDER: JsonObject = {
  allowedWorkspaces: [ACME_UUID],
  workspaceOwnership: { enabled: true },
};

const TOKEN = 'POST /site/oauth2/access_token 200';
const USER = 'GET /2.0/user 200';
const EMAILS = 'GET /2.0/user/emails 200';
const WORKSPACES = 'GET /2.0/user/workspaces 200';
const PERMISSION = (status: number) =>
  `GET /2.0/user/workspaces/${encodeURIComponent(
    ACME_UUID,
  )}/permission ${status}`;
const CONSENT = [
  'GET /site/oauth2/authorize 200',
  'POST /site/oauth2/authorize 302',
];

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

describe('workspace membership from the org import in the catalog', () => {
  let world: CatalogWorld;
  afterEach(async () => {
    await world?.stop();
  });

  it('signs in with token, user and emails only, in one parallel round, and owns the pinned group', async () => {
    world = await startCatalogWorld({ users: [JANE], provider: PROVIDER });
    await world.importRun([acmeGroup([JANE.uuid]), importedUser(JANE)]);
    world.emulator.setFaults({
      endpoints: {
        '/2.0/user': { latencyMs: 150 },
        '/2.0/user/emails': { latencyMs: 150 },
      },
    });
    world.emulator.resetCalls();

    const message = await world.signIn(JANE.uuid);

    expect(message.error).toBeUndefined();
    expect(message.response.backstageIdentity.identity).toEqual({
      type: 'user',
      userEntityRef: 'user:default/jdoe',
      // the import's Group, not group:default/acme
      ownershipEntityRefs: ['user:default/jdoe', 'group:default/engineering'],
    });
    expect(world.calls().sort()).toEqual(
      [...CONSENT, TOKEN, USER, EMAILS].sort(),
    );
    const calls = world.emulator.calls();
    const user = calls.find(c => c.path === '/2.0/user')!;
    const emails = calls.find(c => c.path === '/2.0/user/emails')!;
    expect(user.startedAt).toBeLessThan(emails.endedAt);
    expect(emails.startedAt).toBeLessThan(user.endedAt);
  });

  it('answers refreshes past profileCacheTtl from the catalog: 0 REST calls', async () => {
    world = await startCatalogWorld({
      users: [JANE],
      provider: { ...PROVIDER, profileCacheTtl: '500ms' },
    });
    await world.importRun([acmeGroup([JANE.uuid]), importedUser(JANE)]);
    await world.signIn(JANE.uuid);
    world.emulator.resetCalls();

    await sleep(700);
    const first = await world.refresh();
    await sleep(700);
    const second = await world.refresh();

    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.body.backstageIdentity.identity.ownershipEntityRefs).toEqual([
      'user:default/jdoe',
      'group:default/engineering',
    ]);
    expect(world.calls()).toEqual([]);
  });

  it('refuses a removed member at the first refresh after an import run, with no permission call', async () => {
    world = await startCatalogWorld({ users: [JANE], provider: PROVIDER });
    await world.importRun([acmeGroup([JANE.uuid]), importedUser(JANE)]);
    await world.signIn(JANE.uuid);
    expect((await world.refresh()).status).toBe(200);

    // Jane leaves acme at Bitbucket; the next import run lists acme without her
    world.emulator.updateUser(JANE.uuid, { workspaces: [] });
    await world.importRun([acmeGroup([]), importedUser(JANE)]);
    world.emulator.resetCalls();

    const refused = await world.refresh();

    expect(refused.status).toBe(401);
    expect(refused.body.error.message).toBe(
      `Refresh failed; caused by NotAllowedError: ${NOT_A_MEMBER(JANE)}`,
    );
    expect(world.calls()).toEqual([]);
    expect(
      world.logs.find(l => l.meta?.workspaceCheck === 'refused')?.meta?.reason,
    ).toMatch(
      /^catalog: not listed by the org import after the last membership decision at .+ \(group:default\/engineering listed at .+\)$/,
    );
  });

  it('refuses an attacker whose forged YAML Group and User copy every annotation of the import: the decision falls to Bitbucket', async () => {
    // An org-data repo whose location may write Users and Groups, copying
    // the contract's annotations, the managed-by ones included.
    const listedAt = new Date().toISOString();
    const yaml = `
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: acme-forged
  annotations:
    backstage.io/managed-by-location: bitbucket-cloud-org:test
    backstage.io/managed-by-origin-location: bitbucket-cloud-org:test
    bitbucket.org/workspace-uuid: '${ACME_UUID}'
    bitbucket.org/workspace-slug: acme
    bitbucket.org/members-listed-at: '${listedAt}'
    bitbucket.org/member-uuids: '${MALLORY.uuid},${JANE.uuid}'
spec:
  type: workspace
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: mallory
  annotations:
    bitbucket.org/user-id: '${MALLORY.uuid}'
spec:
  memberOf: [acme-forged]
`;
    world = await startCatalogWorld({
      users: [JANE, MALLORY],
      provider: PROVIDER,
      yaml,
    });
    await world.importRun([acmeGroup([JANE.uuid]), importedUser(JANE)]);
    const forged = await world.served('group:default/acme-forged');
    // the catalog replaced the copied provenance with the file's location
    expect(
      forged.metadata.annotations?.['backstage.io/managed-by-location'],
    ).toMatch(/^file:/);
    await world.served('user:default/mallory');
    world.emulator.resetCalls();

    const message = await world.signIn(MALLORY.uuid);

    expect(message.error).toEqual(
      expect.objectContaining({
        name: 'NotAllowedError',
        message: NOT_A_MEMBER(MALLORY),
      }),
    );
    expect(world.calls().sort()).toEqual(
      [...CONSENT, TOKEN, USER, EMAILS, WORKSPACES, PERMISSION(404)].sort(),
    );
  });

  it('asks Bitbucket when the import is older than workspaceMembershipCatalogMaxAge', async () => {
    world = await startCatalogWorld({
      users: [JANE],
      provider: { ...PROVIDER, workspaceMembershipCatalogMaxAge: '30m' },
    });
    const stale = Date.now() - 31 * 60 * 1000;
    await world.importRun([acmeGroup([JANE.uuid], stale), importedUser(JANE)]);
    world.emulator.resetCalls();

    const message = await world.signIn(JANE.uuid);

    expect(
      message.response.backstageIdentity.identity.ownershipEntityRefs,
    ).toEqual(['user:default/jdoe', 'group:default/acme']);
    expect(world.calls().sort()).toEqual(
      [...CONSENT, TOKEN, USER, EMAILS, WORKSPACES, PERMISSION(200)].sort(),
    );
  });

  it.each([
    [
      'minimumWorkspaceRole: owner (the listing has no roles)',
      { minimumWorkspaceRole: 'owner' },
    ],
    [
      'workspaceMembershipSource: bitbucket',
      { workspaceMembershipSource: 'bitbucket' },
    ],
  ])('asks Bitbucket with %s', async (_, extra) => {
    world = await startCatalogWorld({
      users: [{ ...JANE, workspaces: [{ ...ACME, role: 'owner' }] }],
      provider: { ...PROVIDER, ...extra },
    });
    await world.importRun([acmeGroup([JANE.uuid]), importedUser(JANE)]);
    world.emulator.resetCalls();

    const message = await world.signIn(JANE.uuid);

    expect(message.response.backstageIdentity.identity.userEntityRef).toBe(
      'user:default/jdoe',
    );
    expect(world.calls().sort()).toEqual(
      [...CONSENT, TOKEN, USER, EMAILS, WORKSPACES, PERMISSION(200)].sort(),
    );
  });

  it('asks Bitbucket at a sign-in of a member who joined after the import, and passes', async () => {
    world = await startCatalogWorld({ users: [JANE], provider: PROVIDER });
    await world.importRun([acmeGroup([]), importedUser(JANE)]);
    world.emulator.resetCalls();

    const message = await world.signIn(JANE.uuid);

    expect(message.response.backstageIdentity.identity.userEntityRef).toBe(
      'user:default/jdoe',
    );
    expect(world.calls().sort()).toEqual(
      [...CONSENT, TOKEN, USER, EMAILS, WORKSPACES, PERMISSION(200)].sort(),
    );
    // the listing is older than Bitbucket's answer: no refusal at a refresh
    world.emulator.resetCalls();
    expect((await world.refresh()).status).toBe(200);
    expect(world.calls()).toEqual([]);
  });
});

describe('CatalogMembership', () => {
  const settings = (extra: JsonObject = {}) =>
    readBitbucketProviderSettings(
      new ConfigReader({
        clientId: 'id',
        clientSecret: 'secret',
        allowedWorkspaces: [ACME_UUID],
        ...extra,
      }),
    );
  const auth = mockServices.auth();

  it('falls back to Bitbucket with a warning when the catalog does not answer', async () => {
    const lines: LogLine[] = [];
    const membership = new CatalogMembership({
      catalog: {
        getEntities: async () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:7007');
        },
      } as unknown as CatalogService,
      auth,
      settings: settings(),
      logger: captureLogger(line => lines.push(line)),
    });
    await expect(membership.answer({ uuid: JANE.uuid })).resolves.toEqual({
      kind: 'miss',
      reason: 'catalog unreachable',
    });
    expect(lines.map(l => `${l.level} ${l.message}`)).toEqual([
      'warn Bitbucket workspace check: the catalog did not answer (connect ECONNREFUSED 127.0.0.1:7007); asking Bitbucket instead. Check that the catalog backend runs in this backend or is reachable from it.',
    ]);
  });

  it('counts a Group only when both managed-by annotations name the import', () => {
    const genuine = acmeGroup([JANE.uuid]);
    const withAnnotations = (a: Record<string, string>): Entity => ({
      ...genuine,
      metadata: {
        ...genuine.metadata,
        annotations: { ...genuine.metadata.annotations, ...a },
      },
    });
    expect(toImportedGroup(genuine)?.ref).toBe('group:default/engineering');
    expect(
      toImportedGroup(
        withAnnotations({
          'backstage.io/managed-by-location': 'file:/org.yaml',
        }),
      ),
    ).toBeUndefined();
    expect(
      toImportedGroup(
        withAnnotations({
          'backstage.io/managed-by-origin-location': 'url:https://x/org.yaml',
        }),
      ),
    ).toBeUndefined();
    expect(
      toImportedGroup(
        withAnnotations({ 'bitbucket.org/members-listed-at': 'yesterday' }),
      ),
    ).toBeUndefined();
  });

  it('reuses one catalog answer for every session within reuseMs', async () => {
    let asked = 0;
    const membership = new CatalogMembership({
      catalog: {
        getEntities: async () => {
          asked++;
          return { items: [acmeGroup([JANE.uuid])] };
        },
      } as unknown as CatalogService,
      auth,
      settings: settings(),
      reuseMs: 60_000,
    });
    const answers = await Promise.all([
      membership.answer({ uuid: JANE.uuid }),
      membership.answer({ uuid: MALLORY.uuid }),
    ]);
    expect(answers.map(a => a.kind)).toEqual(['member', 'miss']);
    expect(asked).toBe(1);
  });
});
