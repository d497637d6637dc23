import { UserEntity } from '@backstage/catalog-model';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultBitbucketCloudUserTransformer } from './transformers';
import {
  ACME,
  CONSUMER,
  member,
  memberName,
  PARTNERS,
  PLATFORM,
  ProviderWorld,
  startProviderWorld,
} from './__testUtils__/world';

/** A loopback server that records what reaches it (and answers nothing useful). */
async function startRecorder() {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(
      `${req.method} ${req.url} ${req.headers.authorization ?? ''}`,
    );
    res.writeHead(404).end();
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>(resolve => server.close(() => resolve())),
  };
}

const KEPT =
  ' The catalog keeps the users and groups of the last successful run.';
const FAILED =
  "Bitbucket Cloud org provider 'test' did not update the catalog: ";

/** 230 members of acme (3 pages of 100), the first 3 also in platform. */
const ORG = Array.from({ length: 230 }, (_, i) =>
  member(i + 1, i < 3 ? [ACME, PLATFORM] : [ACME]),
);

describe('BitbucketCloudOrgEntityProvider against the emulator', () => {
  let world: ProviderWorld;
  afterEach(() => world?.stop());

  it('imports every member of every page as a User, and each workspace as a Group', async () => {
    world = await startProviderWorld({ users: ORG });
    expect(await world.provider.refresh()).toBe(true);

    expect(world.mutations).toHaveLength(1);
    const mutation = world.mutations[0];
    expect(mutation.type).toBe('full');
    const names = world.lastNames();
    expect(names.groups).toEqual(['acme', 'platform']);
    expect(names.users).toEqual(ORG.map((_, i) => memberName(i + 1)));

    const entities = mutation.type === 'full' ? mutation.entities : [];
    expect(
      entities.every(
        e => e.locationKey === 'bitbucket-cloud-org-provider:test',
      ),
    ).toBe(true);
    const first = entities.find(e => e.entity.metadata.name === memberName(1));
    expect(first?.entity).toEqual({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'User',
      metadata: {
        name: '00000000-0000-4000-8000-000000000001',
        annotations: {
          'backstage.io/managed-by-location': `url:${world.emulator.url}/%7B00000000-0000-4000-8000-000000000001%7D/`,
          'backstage.io/managed-by-origin-location': `url:${world.emulator.url}/%7B00000000-0000-4000-8000-000000000001%7D/`,
          'bitbucket.org/user-id': '{00000000-0000-4000-8000-000000000001}',
          'bitbucket.org/account-id': '557058:member-1',
        },
      },
      spec: {
        profile: {
          displayName: 'Member 1',
          picture: `${world.emulator.url}/account/00000000-0000-4000-8000-000000000001/avatar.svg`,
        },
        memberOf: ['acme', 'platform'],
      },
    });
    const acme = entities.find(e => e.entity.kind === 'Group');
    expect(acme?.entity).toEqual({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Group',
      metadata: {
        name: 'acme',
        annotations: {
          'backstage.io/managed-by-location': `url:${world.emulator.url}/acme/`,
          'backstage.io/managed-by-origin-location': `url:${world.emulator.url}/acme/`,
          'bitbucket.org/workspace-slug': 'acme',
          'bitbucket.org/workspace-uuid':
            '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
        },
      },
      spec: {
        type: 'workspace',
        profile: { displayName: 'ACME Corp' },
        children: [],
      },
    });
    const last = entities.find(e => e.entity.metadata.name === memberName(230))
      ?.entity as UserEntity;
    expect(last.spec.memberOf).toEqual(['acme']);
  });

  it('makes one token grant and follows next through every page, 100 a page', async () => {
    world = await startProviderWorld({ users: ORG });
    await world.provider.refresh();
    expect(
      world.emulator.calls().map(c => [c.method, c.path, c.query, c.status]),
    ).toEqual([
      ['POST', '/site/oauth2/access_token', '', 200],
      ['GET', '/2.0/workspaces/acme/members', 'pagelen=100', 200],
      ['GET', '/2.0/workspaces/acme/members', 'pagelen=100&page=2', 200],
      ['GET', '/2.0/workspaces/acme/members', 'pagelen=100&page=3', 200],
      ['GET', '/2.0/workspaces/platform/members', 'pagelen=100', 200],
    ]);
    expect(world.emulator.calls()[0].grantType).toBe('client_credentials');
    expect(world.logs).toEqual([
      {
        level: 'info',
        message: expect.stringMatching(
          /^Bitbucket Cloud org provider 'test' imported 230 users and 2 groups from the workspaces acme, platform \(4 REST calls, 1 token grant, \d+ ms\)\.$/,
        ),
      },
    ]);
  });

  it('reads a workspace configured by its uuid, in any letter case', async () => {
    world = await startProviderWorld({
      users: ORG.slice(0, 25),
      workspaces: ['{0E6A3D1F-8C52-4B97-A4E0-7F2B9C5D1E83}'],
    });
    await world.provider.refresh();
    expect(world.lastNames().users).toHaveLength(25);
    expect(world.lastNames().groups).toEqual(['acme']);
    expect(world.emulator.calls()[1].path).toBe(
      '/2.0/workspaces/%7B0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83%7D/members',
    );
  });

  it('reuses the token on the next run, and a member who left disappears', async () => {
    world = await startProviderWorld({ users: ORG.slice(0, 5) });
    await world.provider.refresh();
    world.emulator.removeUser(ORG[4].uuid);
    world.emulator.addUser(member(999, [ACME]));
    world.emulator.resetCalls();

    expect(await world.provider.refresh()).toBe(true);
    expect(world.mutations).toHaveLength(2);
    expect(world.lastNames().users).toEqual([
      memberName(1),
      memberName(2),
      memberName(3),
      memberName(4),
      memberName(999),
    ]);
    expect(world.emulator.calls().map(c => c.path)).toEqual([
      '/2.0/workspaces/acme/members',
      '/2.0/workspaces/platform/members',
    ]);
    expect(world.logs[1].message).toMatch(/\(2 REST calls, \d+ ms\)\.$/);
  });

  it('gets a new token once when Bitbucket rejects the cached one early', async () => {
    world = await startProviderWorld({ users: ORG.slice(0, 5) });
    await world.provider.refresh();
    world.emulator.expireAccessTokens();
    world.emulator.resetCalls();

    expect(await world.provider.refresh()).toBe(true);
    expect(world.emulator.calls().map(c => [c.path, c.status])).toEqual([
      ['/2.0/workspaces/acme/members', 401],
      ['/site/oauth2/access_token', 200],
      ['/2.0/workspaces/acme/members', 200],
      ['/2.0/workspaces/platform/members', 200],
    ]);
  });

  it('imports one User for a workspace configured twice, by slug and by uuid', async () => {
    world = await startProviderWorld({
      users: ORG.slice(0, 2),
      workspaces: ['acme', ACME.uuid!],
    });
    await world.provider.refresh();
    expect(world.lastNames()).toEqual({
      users: [memberName(1), memberName(2)],
      groups: ['acme'],
    });
  });

  it('runs the transformers set through the extension point', async () => {
    world = await startProviderWorld({
      users: ORG.slice(0, 2),
      transformers: slots =>
        slots.setUserTransformer(async (m, ctx) => {
          const user = await defaultBitbucketCloudUserTransformer(m, ctx);
          user!.spec.profile!.email = `${m.nickname}@corp.example`;
          return user;
        }),
    });
    await world.provider.refresh();
    const mutation = world.mutations[0];
    const user = (mutation.type === 'full' ? mutation.entities : [])[2]
      .entity as UserEntity;
    expect(user.spec.profile?.email).toBe('member1@corp.example');
  });

  describe('a failed run changes nothing and says what to fix', () => {
    async function failAfterOneGoodRun(
      setup: (w: ProviderWorld) => void,
      options: Parameters<typeof startProviderWorld>[0] = {
        users: ORG.slice(0, 3),
      },
    ): Promise<string> {
      world = await startProviderWorld(options);
      expect(await world.provider.refresh()).toBe(true);
      setup(world);
      expect(await world.provider.refresh()).toBe(false);
      expect(world.mutations).toHaveLength(1);
      const errors = world.logs.filter(l => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0].message.startsWith(FAILED)).toBe(true);
      expect(errors[0].message.endsWith(KEPT)).toBe(true);
      return errors[0].message.slice(FAILED.length, -KEPT.length);
    }

    it('403: the consumer cannot read a workspace', async () => {
      world = await startProviderWorld({
        users: [...ORG.slice(0, 3), member(500, [PARTNERS])],
        workspaces: ['acme', 'partners'],
      });
      expect(await world.provider.refresh()).toBe(false);
      expect(world.mutations).toEqual([]);
      expect(world.logs).toEqual([
        {
          level: 'error',
          message: `${FAILED}Bitbucket refused GET /2.0/workspaces/partners/members (HTTP 403, Bitbucket said: "You do not have access to this workspace."): the OAuth consumer of 'catalog.providers.bitbucketCloudOrg.test' cannot read the workspace 'partners'. An OAuth consumer reads the workspace it was created in: configure a provider with a consumer of 'partners', or remove 'partners' from 'catalog.providers.bitbucketCloudOrg.test.workspaces'.${KEPT}`,
        },
      ]);
    });

    it('403: the consumer lacks Workspace membership: Read', async () => {
      world = await startProviderWorld({
        users: ORG.slice(0, 3),
        consumerPermissions: ['account', 'email'],
      });
      expect(await world.provider.refresh()).toBe(false);
      expect(world.logs[0].message).toBe(
        `${FAILED}The OAuth consumer of 'catalog.providers.bitbucketCloudOrg.test' lacks the permission "Workspace membership: Read" (scope 'team'; granted: account email), which GET /2.0/workspaces/acme/members needs. Tick it on the consumer (Workspace settings > OAuth consumers > Edit); the next run uses it.${KEPT}`,
      );
      // the next run asks for a new token, which carries the new permissions
      world.emulator.resetCalls();
      await world.provider.refresh();
      expect(world.emulator.calls()[0].path).toBe('/site/oauth2/access_token');
    });

    it('404: a workspace that does not exist', async () => {
      world = await startProviderWorld({
        users: ORG.slice(0, 3),
        workspaces: ['acme', 'acme-typo'],
      });
      expect(await world.provider.refresh()).toBe(false);
      expect(world.mutations).toEqual([]);
      expect(world.logs).toEqual([
        {
          level: 'error',
          message: `${FAILED}Bitbucket has no workspace 'acme-typo' (HTTP 404 on GET /2.0/workspaces/acme-typo/members, Bitbucket said: "No workspace with identifier 'acme-typo'."). Check 'catalog.providers.bitbucketCloudOrg.test.workspaces': use the workspace's slug (the part after bitbucket.org/ in its URL) or its '{uuid}'.${KEPT}`,
        },
      ]);
    });

    it('429: the rate limit', async () => {
      const message = await failAfterOneGoodRun(w =>
        w.emulator.setFaults({
          endpoints: {
            '/2.0/workspaces/platform/members': {
              status: 429,
              retryAfterSeconds: 30,
            },
          },
        }),
      );
      expect(message).toBe(
        "Bitbucket's rate limit for the OAuth consumer was reached (HTTP 429 on GET /2.0/workspaces/platform/members, Retry-After 30 s). The next scheduled run tries again; if this recurs, lower the frequency at 'catalog.providers.bitbucketCloudOrg.test.schedule' or give the catalog an OAuth consumer of its own (the limit is per consumer).",
      );
    });

    it('timeout: Bitbucket does not answer', async () => {
      const message = await failAfterOneGoodRun(
        w =>
          w.emulator.setFaults({
            endpoints: { '/2.0/workspaces/acme/members': { hang: true } },
          }),
        {
          users: ORG.slice(0, 3),
          provider: { requestTimeout: 300 },
        },
      );
      expect(message).toBe(
        `Bitbucket did not answer GET /2.0/workspaces/acme/members within 300 ms. Check that ${world.emulator.url} is reachable from the backend ('catalog.providers.bitbucketCloudOrg.test.apiBaseUrl'), or raise 'catalog.providers.bitbucketCloudOrg.test.requestTimeout'.`,
      );
    });

    it('5xx and broken answers', async () => {
      const message = await failAfterOneGoodRun(w =>
        w.emulator.setFaults({
          endpoints: { '/2.0/workspaces/acme/members': { status: 502 } },
        }),
      );
      expect(message).toMatch(
        /^Bitbucket failed GET \/2\.0\/workspaces\/acme\/members \(HTTP 502, Bitbucket said: ".+"\)\. Try again later; if it persists check https:\/\/bitbucket\.status\.atlassian\.com\.$/,
      );
      world.emulator.setFaults({
        endpoints: {
          '/2.0/workspaces/acme/members': { omitFields: ['values'] },
        },
      });
      await world.provider.refresh();
      expect(world.logs[world.logs.length - 1].message).toContain(
        "Bitbucket answered GET /2.0/workspaces/acme/members with a page without 'values'. Try again later; if it persists, check that 'catalog.providers.bitbucketCloudOrg.test.apiBaseUrl' points at Bitbucket Cloud (https://api.bitbucket.org/2.0).",
      );
      world.emulator.setFaults({
        endpoints: {
          '/2.0/workspaces/acme/members': { malformedJson: true },
        },
      });
      await world.provider.refresh();
      expect(world.logs[world.logs.length - 1].message).toContain(
        'Bitbucket answered GET /2.0/workspaces/acme/members with a body that is not JSON.',
      );
      expect(world.mutations).toHaveLength(1);
    });

    it('an answer with no members at all changes nothing', async () => {
      const message = await failAfterOneGoodRun(w =>
        w.emulator.setFaults({
          endpoints: {
            '/2.0/workspaces/acme/members': { setFields: { values: [] } },
          },
        }),
      );
      expect(message).toBe(
        "Bitbucket answered GET /2.0/workspaces/acme/members with no members at all, though a workspace always has its owner; nothing is changed on such an answer. Try again later; if it persists, check that 'catalog.providers.bitbucketCloudOrg.test.apiBaseUrl' points at Bitbucket Cloud (https://api.bitbucket.org/2.0).",
      );
    });

    it("a 'next' link to another host is not followed: the token never leaves apiBaseUrl", async () => {
      const elsewhere = await startRecorder();
      try {
        const next = `${elsewhere.url}/2.0/workspaces/acme/members?page=2`;
        const message = await failAfterOneGoodRun(w =>
          w.emulator.setFaults({
            endpoints: {
              '/2.0/workspaces/acme/members': { setFields: { next } },
            },
          }),
        );
        expect(message).toBe(
          `Bitbucket answered GET /2.0/workspaces/acme/members with a 'next' link outside ${world.emulator.url}/2.0 (${next}). Try again later; if it persists, check that 'catalog.providers.bitbucketCloudOrg.test.apiBaseUrl' points at Bitbucket Cloud (https://api.bitbucket.org/2.0).`,
        );
        expect(elsewhere.requests).toEqual([]);
      } finally {
        await elsewhere.close();
      }
    });

    it('the token endpoint refuses the consumer', async () => {
      world = await startProviderWorld({
        users: ORG.slice(0, 3),
        provider: { clientSecret: 'not-the-secret' },
      });
      expect(await world.provider.refresh()).toBe(false);
      expect(world.logs[0].message).toBe(
        `${FAILED}Bitbucket rejected the OAuth consumer's credentials (invalid_client, Bitbucket said: "Invalid OAuth client credentials."). Check that 'catalog.providers.bitbucketCloudOrg.test.clientId' and 'catalog.providers.bitbucketCloudOrg.test.clientSecret' are the Key and Secret of an OAuth consumer (Workspace settings > OAuth consumers) marked "This is a private consumer", which the client-credentials grant needs.${KEPT}`,
      );
    });

    it('the token endpoint is down', async () => {
      const message = await failAfterOneGoodRun(w => {
        w.emulator.expireAccessTokens();
        w.emulator.setFaults({
          endpoints: { '/site/oauth2/access_token': { status: 503 } },
        });
      });
      expect(message).toMatch(
        /^Bitbucket's token endpoint failed \(HTTP 503, temporarily_unavailable, Bitbucket said: ".+"\)\. Try again later; if it persists check https:\/\/bitbucket\.status\.atlassian\.com\.$/,
      );
    });

    it('a transformer throws', async () => {
      world = await startProviderWorld({
        users: ORG.slice(0, 1),
        transformers: slots =>
          slots.setGroupTransformer(async () => {
            throw new Error('no such team in the directory');
          }),
      });
      expect(await world.provider.refresh()).toBe(false);
      expect(world.logs[0].message).toBe(
        `${FAILED}the group transformer failed for workspace 'acme': no such team in the directory${KEPT}`,
      );
    });
  });

  it('never logs the secret or a token', async () => {
    world = await startProviderWorld({
      users: ORG.slice(0, 3),
      workspaces: ['acme', 'nope'],
    });
    await world.provider.refresh();
    const logged = JSON.stringify(world.logs);
    expect(logged).not.toContain(CONSUMER.secret);
    expect(logged).not.toContain(
      Buffer.from(`${CONSUMER.key}:${CONSUMER.secret}`).toString('base64'),
    );
    expect(logged).not.toMatch(/Bearer|access_token/);
  });
});
