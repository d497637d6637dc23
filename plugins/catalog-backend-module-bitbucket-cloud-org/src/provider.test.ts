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
const REFUSED = (workspace: string) =>
  `Bitbucket Cloud org provider 'test' did not apply the listing of workspace '${workspace}': `;
const NO_EARLIER =
  ' It has no earlier listing, so it has no Group yet; the other workspaces are applied.';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const PROVENANCE = 'bitbucket-cloud-org:test';

/** The braced uuids of members n..m, as member-uuids writes them. */
function uuids(numbers: number[]): string {
  return numbers.map(n => `{${memberName(n)}}`).join(',');
}

/** 230 members of acme (3 pages of 100), the first 3 also in platform. */
const ORG = Array.from({ length: 230 }, (_, i) =>
  member(i + 1, i < 3 ? [ACME, PLATFORM] : [ACME]),
);

/** The last mutation's workspace Groups' annotations, by group name. */
function annotationsOf(
  w: ProviderWorld,
): Record<string, Record<string, string>> {
  return Object.fromEntries(
    w
      .lastEntities()
      .filter(e => e.kind === 'Group')
      .map(e => [e.metadata.name, e.metadata.annotations ?? {}]),
  );
}

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
          'backstage.io/managed-by-location': PROVENANCE,
          'backstage.io/managed-by-origin-location': PROVENANCE,
          'backstage.io/view-url': `${world.emulator.url}/%7B00000000-0000-4000-8000-000000000001%7D/`,
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
          'backstage.io/managed-by-location': PROVENANCE,
          'backstage.io/managed-by-origin-location': PROVENANCE,
          'backstage.io/view-url': `${world.emulator.url}/acme/`,
          'bitbucket.org/workspace-slug': 'acme',
          'bitbucket.org/workspace-uuid':
            '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
          'bitbucket.org/members-listed-at': expect.stringMatching(ISO),
          'bitbucket.org/member-uuids': uuids(ORG.map((_, i) => i + 1)),
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
      ['GET', '/2.0/workspaces/acme/permissions', 'pagelen=100', 200],
      ['GET', '/2.0/workspaces/acme/permissions', 'pagelen=100&page=2', 200],
      ['GET', '/2.0/workspaces/acme/permissions', 'pagelen=100&page=3', 200],
      ['GET', '/2.0/workspaces/platform/members', 'pagelen=100', 200],
      ['GET', '/2.0/workspaces/platform/permissions', 'pagelen=100', 200],
    ]);
    expect(world.emulator.calls()[0].grantType).toBe('client_credentials');
    expect(world.logs).toEqual([
      {
        level: 'info',
        message: expect.stringMatching(
          /^Bitbucket Cloud org provider 'test' imported 230 users and 2 groups from the workspaces acme, platform \(8 REST calls, 1 token grant, \d+ ms\)\.$/,
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
      '/2.0/workspaces/acme/permissions',
      '/2.0/workspaces/platform/members',
      '/2.0/workspaces/platform/permissions',
    ]);
    expect(world.logs[1].message).toMatch(/\(4 REST calls, \d+ ms\)\.$/);
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
      ['/2.0/workspaces/acme/permissions', 200],
      ['/2.0/workspaces/platform/members', 200],
      ['/2.0/workspaces/platform/permissions', 200],
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

    /**
     * One good run, then `setup` spoils acme's listing: acme keeps its
     * Group and Users of the first run (members-listed-at included), platform
     * is applied anew. Resolves the reason logged for acme.
     */
    async function refusedAfterOneGoodRun(
      setup: (w: ProviderWorld) => void,
      options: Parameters<typeof startProviderWorld>[0] = {
        users: ORG.slice(0, 3),
      },
    ): Promise<string> {
      world = await startProviderWorld(options);
      expect(await world.provider.refresh()).toBe(true);
      const first = annotationsOf(world);
      const firstUsers = world.lastNames().users;
      await new Promise(r => setTimeout(r, 5));
      setup(world);
      expect(await world.provider.refresh()).toBe(true);
      expect(world.mutations).toHaveLength(2);
      const second = annotationsOf(world);
      expect(second.acme).toEqual(first.acme);
      expect(world.lastNames().users).toEqual(firstUsers);
      // one failing workspace does not freeze the others
      expect(second.platform['bitbucket.org/members-listed-at']).not.toBe(
        first.platform['bitbucket.org/members-listed-at'],
      );
      const errors = world.logs.filter(l => l.level === 'error');
      expect(errors).toHaveLength(1);
      const suffix = ` Its Group keeps the members listed at ${first.acme['bitbucket.org/members-listed-at']}; the other workspaces are applied.`;
      expect(errors[0].message.startsWith(REFUSED('acme'))).toBe(true);
      expect(errors[0].message.endsWith(suffix)).toBe(true);
      return errors[0].message.slice(REFUSED('acme').length, -suffix.length);
    }

    it('403: the consumer cannot read a workspace', async () => {
      world = await startProviderWorld({
        users: [...ORG.slice(0, 3), member(500, [PARTNERS])],
        workspaces: ['acme', 'partners'],
      });
      // acme is applied all the same
      expect(await world.provider.refresh()).toBe(true);
      expect(world.lastNames().groups).toEqual(['acme']);
      expect(world.logs[0]).toEqual({
        level: 'error',
        message: `${REFUSED(
          'partners',
        )}Bitbucket refused GET /2.0/workspaces/partners/members (HTTP 403, Bitbucket said: "You do not have access to this workspace."): the OAuth consumer of 'catalog.providers.bitbucketCloudOrg.test' cannot read the workspace 'partners'. An OAuth consumer reads the workspace it was created in: configure a provider with a consumer of 'partners', or remove 'partners' from 'catalog.providers.bitbucketCloudOrg.test.workspaces'.${NO_EARLIER}`,
      });
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
      expect(await world.provider.refresh()).toBe(true);
      expect(world.lastNames().groups).toEqual(['acme']);
      expect(world.logs[0]).toEqual({
        level: 'error',
        message: `${REFUSED(
          'acme-typo',
        )}Bitbucket has no workspace 'acme-typo' (HTTP 404 on GET /2.0/workspaces/acme-typo/members, Bitbucket said: "No workspace with identifier 'acme-typo'."). Check 'catalog.providers.bitbucketCloudOrg.test.workspaces': use the workspace's slug (the part after bitbucket.org/ in its URL) or its '{uuid}'.${NO_EARLIER}`,
      });
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
      const message = await refusedAfterOneGoodRun(w =>
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
      expect(
        world.logs.filter(l => l.level === 'error').pop()?.message,
      ).toContain(
        "Bitbucket answered GET /2.0/workspaces/acme/members with a page without 'values'. Try again later; if it persists, check that 'catalog.providers.bitbucketCloudOrg.test.apiBaseUrl' points at Bitbucket Cloud (https://api.bitbucket.org/2.0).",
      );
      world.emulator.setFaults({
        endpoints: {
          '/2.0/workspaces/acme/members': { malformedJson: true },
        },
      });
      await world.provider.refresh();
      expect(
        world.logs.filter(l => l.level === 'error').pop()?.message,
      ).toContain(
        'Bitbucket answered GET /2.0/workspaces/acme/members with a body that is not JSON.',
      );
      expect(world.mutations).toHaveLength(4);
    });

    it('an answer with no members at all changes nothing', async () => {
      const message = await refusedAfterOneGoodRun(w =>
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
        const message = await refusedAfterOneGoodRun(w =>
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

describe('an import the sign-in can trust', () => {
  let world: ProviderWorld;
  afterEach(() => world?.stop());

  const COLLABORATOR = {
    ...member(77, []),
    workspaces: [{ ...ACME, role: 'collaborator' as const }],
  };

  it('leaves collaborators out: no User, not in member-uuids', async () => {
    world = await startProviderWorld({
      users: [...ORG.slice(0, 3), COLLABORATOR],
    });
    expect(await world.provider.refresh()).toBe(true);
    expect(world.lastNames().users).toEqual([
      memberName(1),
      memberName(2),
      memberName(3),
    ]);
    expect(annotationsOf(world).acme['bitbucket.org/member-uuids']).toBe(
      uuids([1, 2, 3]),
    );
    expect(world.logs[0].message).toMatch(
      /from the workspaces acme, platform, leaving out 1 collaborator \(4 REST calls, 1 token grant, \d+ ms\)\.$/,
    );
  });

  it('refuses a workspace whose permissions listing is refused, saying what fixes it', async () => {
    world = await startProviderWorld({ users: ORG.slice(0, 3) });
    world.emulator.setFaults({
      endpoints: { '/2.0/workspaces/acme/permissions': { status: 403 } },
    });
    expect(await world.provider.refresh()).toBe(true);
    expect(world.lastNames().groups).toEqual(['platform']);
    expect(world.logs[0]).toEqual({
      level: 'error',
      message: `${REFUSED(
        'acme',
      )}Bitbucket refused GET /2.0/workspaces/acme/permissions (HTTP 403, Bitbucket said: "Forbidden"), the listing that tells members from collaborators, which only a workspace admin may read. Use an OAuth consumer created in the settings of the workspace 'acme' itself (Workspace settings > OAuth consumers, as a workspace admin) with "Workspace membership: Read", and set its Key and Secret at 'catalog.providers.bitbucketCloudOrg.test'; a consumer of another workspace or of a personal account may read the members but not their permissions. Without that listing the workspace is not imported, so that no collaborator becomes a member.${NO_EARLIER}`,
    });
  });

  describe('a shrunken listing is not applied, and acme keeps its last good one', () => {
    async function refused(
      spoil: (w: ProviderWorld) => void,
      users = ORG.slice(0, 3),
    ): Promise<string> {
      world = await startProviderWorld({ users });
      expect(await world.provider.refresh()).toBe(true);
      const first = annotationsOf(world);
      const firstUsers = world.lastNames().users;
      await new Promise(r => setTimeout(r, 5));
      spoil(world);
      expect(await world.provider.refresh()).toBe(true);
      expect(annotationsOf(world).acme).toEqual(first.acme);
      expect(world.lastNames().users).toEqual(firstUsers);
      const error = world.logs.find(l => l.level === 'error')!.message;
      const suffix = ` Its Group keeps the members listed at ${first.acme['bitbucket.org/members-listed-at']}; the other workspaces are applied.`;
      expect(error.startsWith(REFUSED('acme'))).toBe(true);
      expect(error.endsWith(suffix)).toBe(true);
      return error.slice(REFUSED('acme').length, -suffix.length);
    }
    const AGAIN =
      "; such a listing is not applied. Nothing needs accepting: the next run lists again. If it persists, check that 'catalog.providers.bitbucketCloudOrg.test.apiBaseUrl' points at Bitbucket Cloud (https://api.bitbucket.org/2.0) and not at a proxy that rewrites answers.";

    it('an entry without a uuid', async () => {
      const reason = await refused(w =>
        w.emulator.setFaults({
          endpoints: {
            '/2.0/workspaces/acme/members': {
              setFields: {
                values: [
                  {
                    type: 'workspace_membership',
                    user: { display_name: 'Ghost' },
                  },
                ],
              },
            },
          },
        }),
      );
      expect(reason).toBe(
        `Bitbucket answered GET /2.0/workspaces/acme/members with an entry without a valid account uuid (Ghost, on page 1)${AGAIN}`,
      );
    });

    it("fewer entries than Bitbucket's size", async () => {
      const reason = await refused(w =>
        w.emulator.setFaults({
          endpoints: {
            '/2.0/workspaces/acme/permissions': { setFields: { size: 4 } },
          },
        }),
      );
      expect(reason).toBe(
        `Bitbucket answered GET /2.0/workspaces/acme/permissions with 3 entries where its 'size' announces 4 (the listing ended early)${AGAIN}`,
      );
    });

    it('a listing cut after its first page', async () => {
      const reason = await refused(
        w =>
          w.emulator.setFaults({
            endpoints: {
              '/2.0/workspaces/acme/members': { omitFields: ['next'] },
            },
          }),
        ORG,
      );
      expect(reason).toBe(
        `Bitbucket answered GET /2.0/workspaces/acme/members with 100 entries where its 'size' announces 230 (the listing ended early)${AGAIN}`,
      );
    });

    it('a page missing', async () => {
      const reason = await refused(
        w =>
          w.emulator.setFaults({
            endpoints: {
              '/2.0/workspaces/acme/members': {
                times: 1,
                setFields: {
                  next: `${w.emulator.apiBaseUrl}/workspaces/acme/members?pagelen=100&page=3`,
                },
              },
            },
          }),
        ORG,
      );
      expect(reason).toBe(
        `Bitbucket answered GET /2.0/workspaces/acme/members with page 3 where page 2 was due (a page missing)${AGAIN}`,
      );
    });

    it('a drop above memberDrop; raising maxShare for one run accepts it', async () => {
      const twenty = ORG.slice(0, 20);
      const reason = await refused(w => {
        for (const gone of twenty.slice(17)) w.emulator.removeUser(gone.uuid);
      }, twenty);
      expect(reason).toMatch(
        /^the listing of workspace 'acme' lacks 3 of the 20 members of the last applied listing \(15 %, listed at \d{4}-.+Z\), more than 'catalog\.providers\.bitbucketCloudOrg\.test\.memberDrop' allows \(maxShare 10 %, minCount 2\), so it is not applied\. If so many people really left, accept it by raising 'catalog\.providers\.bitbucketCloudOrg\.test\.memberDrop\.maxShare' \(1 accepts any drop\) for one run, then set it back\.$/,
      );
      // the accepting run: a restart with the key raised
      const accepting = await world.restart({ memberDrop: { maxShare: 1 } });
      expect(await accepting.refresh()).toBe(true);
      expect(annotationsOf(world).acme['bitbucket.org/member-uuids']).toBe(
        uuids(Array.from({ length: 17 }, (_, i) => i + 1)),
      );
    });
  });

  it('applies a drop within memberDrop (1 of 20)', async () => {
    world = await startProviderWorld({ users: ORG.slice(0, 20) });
    await world.provider.refresh();
    world.emulator.removeUser(ORG[19].uuid);
    expect(await world.provider.refresh()).toBe(true);
    expect(world.lastNames().users).toHaveLength(19);
    expect(world.logs.filter(l => l.level === 'error')).toEqual([]);
  });

  it('after a restart, a refused workspace keeps the listing of its Group in the catalog', async () => {
    world = await startProviderWorld({ users: ORG.slice(0, 3) });
    await world.provider.refresh();
    const first = world.lastEntities();
    const restarted = await world.restart();
    world.emulator.setFaults({
      endpoints: { '/2.0/workspaces/acme/members': { status: 502 } },
    });
    expect(await restarted.refresh()).toBe(true);
    const second = world.lastEntities();
    const acme = (entities: typeof first) =>
      entities.find(e => e.metadata.name === 'acme')!.metadata.annotations;
    expect(acme(second)).toEqual(acme(first));
    expect(world.lastNames().users).toEqual([
      memberName(1),
      memberName(2),
      memberName(3),
    ]);
    const jane = second.find(e => e.metadata.name === memberName(1))!;
    expect(jane.spec).toEqual({
      profile: {
        displayName: 'Member 1',
        picture: `${world.emulator.url}/account/${memberName(1)}/avatar.svg`,
      },
      memberOf: ['acme', 'platform'],
    });
  });

  describe('group names do not follow a slug rename', () => {
    it('keeps group:default/acme when acme becomes platform-admins (configured by uuid), across a restart', async () => {
      world = await startProviderWorld({
        users: ORG.slice(0, 3),
        workspaces: [ACME.uuid!, PLATFORM.uuid!],
      });
      await world.provider.refresh();
      world.emulator.renameWorkspace(ACME.uuid!, 'platform-admins');
      expect(await world.provider.refresh()).toBe(true);
      expect(world.lastNames().groups).toEqual(['acme', 'platform']);
      expect(annotationsOf(world).acme).toMatchObject({
        'bitbucket.org/workspace-slug': 'platform-admins',
        'backstage.io/view-url': `${world.emulator.url}/platform-admins/`,
        'bitbucket.org/member-uuids': uuids([1, 2, 3]),
      });
      const restarted = await world.restart();
      expect(await restarted.refresh()).toBe(true);
      expect(world.lastNames().groups).toEqual(['acme', 'platform']);
      const user = world
        .lastEntities()
        .find(e => e.metadata.name === memberName(1)) as UserEntity;
      expect(user.spec.memberOf).toEqual(['acme', 'platform']);
    });

    it('names a Group from config: { workspace, group }', async () => {
      world = await startProviderWorld({
        users: ORG.slice(0, 1),
        workspaces: [],
        provider: {
          workspaces: [{ workspace: ACME.uuid!, group: 'acme-engineering' }],
        },
      });
      world.emulator.renameWorkspace('acme', 'platform-admins');
      expect(await world.provider.refresh()).toBe(true);
      expect(world.lastNames().groups).toEqual(['acme-engineering']);
    });
  });

  describe('turning the import on locks no one out', () => {
    const HAND_WRITTEN = {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'User',
      metadata: {
        name: 'member-two',
        namespace: 'default',
        annotations: {
          // another letter case, no braces: the same account
          'bitbucket.org/user-id': memberName(2).toUpperCase(),
          'backstage.io/managed-by-location': 'file:/org/users.yaml',
          'backstage.io/managed-by-origin-location': 'file:/org/users.yaml',
        },
      },
      spec: { memberOf: [] },
    };

    it('writes no User for an account a User of another source claims, warns once, keeps it in member-uuids', async () => {
      world = await startProviderWorld({
        users: ORG.slice(0, 3),
        others: [HAND_WRITTEN],
      });
      expect(await world.provider.refresh()).toBe(true);
      expect(world.lastNames().users).toEqual([memberName(1), memberName(3)]);
      expect(annotationsOf(world).acme['bitbucket.org/member-uuids']).toBe(
        uuids([1, 2, 3]),
      );
      expect(world.logs.filter(l => l.level === 'warn')).toEqual([
        {
          level: 'warn',
          message: `Bitbucket Cloud org provider 'test' wrote no User for 1 account that a User of another source already claims (same bitbucket.org/user-id): {${memberName(
            2,
          )}} (user:default/member-two). They stay in their workspace Groups' member uuids and sign in as those Users; to let this provider manage them, remove those Users from their source.`,
        },
      ]);
      // and its own Users do not count as claims on the next run
      expect(await world.provider.refresh()).toBe(true);
      expect(world.lastNames().users).toEqual([memberName(1), memberName(3)]);
    });

    it("counts this provider's Users of the release before the provenance as its own, so the upgrade drops none", async () => {
      world = await startProviderWorld({ users: ORG.slice(0, 2) });
      const uuid = `{${memberName(2)}}`;
      const page = `url:${world.emulator.url}/${encodeURIComponent(uuid)}/`;
      world.others.push({
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'User',
        metadata: {
          name: memberName(2),
          namespace: 'default',
          annotations: {
            'bitbucket.org/user-id': uuid,
            'backstage.io/managed-by-location': page,
            'backstage.io/managed-by-origin-location': page,
          },
        },
        spec: { memberOf: ['acme'] },
      });
      expect(await world.provider.refresh()).toBe(true);
      expect(world.lastNames().users).toEqual([memberName(1), memberName(2)]);
      expect(world.logs.filter(l => l.level === 'warn')).toEqual([]);
    });
  });
});
