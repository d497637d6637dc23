/*
 * The attacks of issue 11, each tried as an attacker would: with a second
 * Bitbucket account (Mallory), a workspace of her own, and the sign-in flow
 * of a real backend against the emulator. Each test failed on the code
 * before the fix (commit 96588b9); docs/security.md names them.
 */
import { SeedUser, SeedWorkspace } from '@internal/bitbucket-cloud-emulator';
import { JsonObject } from '@backstage/types';
import request from 'supertest';
import {
  catalogUser,
  HardeningWorld,
  sharedCache,
  startBackend,
  startHardeningWorld,
} from './__testUtils__/world';
import { captureLogger, LogLine } from '../__testUtils__/backend';

const ACME: SeedWorkspace = {
  slug: 'acme',
  name: 'ACME Corp',
  uuid: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
  role: 'member',
};

const JANE: SeedUser = {
  uuid: '{4f1c2b7a-8d3e-4a5b-9c6d-7e8f9a0b1c2d}',
  accountId: '557058:4f1c2b7a-8d3e-4a5b-9c6d-7e8f9a0b1c2d',
  username: 'jdoe',
  nickname: 'jdoe',
  displayName: 'Jane Doe',
  emails: [{ email: 'jane.doe@example.com', primary: true, confirmed: true }],
  workspaces: [ACME],
};
const BOB: SeedUser = {
  uuid: '{0b0b0b0b-1111-4222-8333-444444444444}',
  accountId: '5f3a9c1e7b2d4a0016e8c5b9',
  username: 'bob',
  nickname: 'bob',
  displayName: 'Bob Builder',
  emails: [{ email: 'bob@example.com', primary: true, confirmed: true }],
  workspaces: [ACME],
};
/** The attacker: a Bitbucket account of her own, in no allowed workspace. */
const MALLORY: SeedUser = {
  uuid: '{6d6d6d6d-1111-4222-8333-444444444444}',
  accountId: '557058:6d6d6d6d-1111-4222-8333-444444444444',
  username: 'mallory',
  nickname: 'mallory',
  displayName: 'Mallory',
  emails: [{ email: 'mallory@example.org', primary: true, confirmed: true }],
  workspaces: [],
};
const bare = (uuid: string) => uuid.replace(/[{}]/g, '').toLowerCase();

const jane = catalogUser(
  'jane.doe',
  { 'bitbucket.org/user-id': JANE.uuid },
  { profile: { email: 'jane.doe@example.com' } },
);
const mallory = catalogUser('mallory', {
  'bitbucket.org/user-id': MALLORY.uuid,
});
const resolvers = (...names: Array<string | JsonObject>): JsonObject => ({
  signIn: {
    resolvers: names.map(r => (typeof r === 'string' ? { resolver: r } : r)),
  },
});
const decisions = (logs: LogLine[]) =>
  logs.filter(l => l.message === 'Bitbucket sign-in decision');

describe('attacks on identity, groups and budget (issue 11)', () => {
  let world: HardeningWorld | undefined;
  afterEach(async () => {
    await world?.stop();
    world = undefined;
  });

  const signIn = async (uuid: string) => {
    const { message } = await world!.signIn(uuid, {
      agent: world!.newAgent(),
    });
    return {
      identity: message.response?.backstageIdentity?.identity,
      error: message.error,
    };
  };

  describe('1. a workspace named like a group', () => {
    it('workspaceOwnership without allowedWorkspaces stops the start-up', async () => {
      // anyone can create a workspace `platform` and would own group:default/platform
      await expect(
        startHardeningWorld({
          users: [MALLORY],
          entities: [mallory],
          consumerPermissions: ['account', 'email', 'team'],
          provider: { workspaceOwnership: { enabled: true } },
        }),
      ).rejects.toThrow(
        "Config value at 'auth.providers.bitbucket.development.workspaceOwnership' needs 'auth.providers.bitbucket.development.allowedWorkspaces': anyone can create a Bitbucket workspace with a free slug such as 'platform', so ownership is granted only for the workspaces you list there.",
      );
    });

    it('a workspace outside the allow-list, or a role below member, gives no group', async () => {
      world = await startHardeningWorld({
        users: [
          {
            ...MALLORY,
            workspaces: [
              { ...ACME, role: 'collaborator' },
              { slug: 'platform', role: 'owner' },
            ],
          },
          JANE,
        ],
        entities: [mallory, jane],
        consumerPermissions: ['account', 'email', 'team'],
        provider: {
          allowedWorkspaces: ['acme', 'platform-team'],
          minimumWorkspaceRole: 'collaborator',
          workspaceOwnership: { enabled: true },
        },
      });
      expect((await signIn(MALLORY.uuid)).identity).toEqual({
        type: 'user',
        userEntityRef: 'user:default/mallory',
        ownershipEntityRefs: ['user:default/mallory'],
      });
      expect((await signIn(JANE.uuid)).identity.ownershipEntityRefs).toEqual([
        'user:default/jane.doe',
        'group:default/acme',
      ]);
    });
  });

  describe('2. a collaborator is not a member', () => {
    const carol: SeedUser = {
      ...MALLORY,
      workspaces: [{ ...ACME, role: 'collaborator' }],
    };

    it('with allowedWorkspaces the least role is member by default', async () => {
      world = await startHardeningWorld({
        users: [carol, JANE],
        entities: [mallory, jane],
        consumerPermissions: ['account', 'email', 'team'],
        provider: { allowedWorkspaces: ['acme'] },
      });
      const { identity, error } = await signIn(MALLORY.uuid);
      expect(identity).toBeUndefined();
      expect(error).toEqual({
        name: 'NotAllowedError',
        message:
          "Your Bitbucket account Mallory ({6d6d6d6d-1111-4222-8333-444444444444}) has the role 'collaborator' in the workspace 'acme', and this portal needs at least the role 'member' there. Ask an admin of 'acme' to make you a member, or sign in with another Bitbucket account.",
      });
      expect((await signIn(JANE.uuid)).identity.userEntityRef).toBe(
        'user:default/jane.doe',
      );
      // the role comes from the same parallel round as the profile
      const paths = world.emulator.calls().map(c => c.path);
      expect(paths).toContain('/2.0/user/workspaces/acme/permission');
    });

    it('minimumWorkspaceRole: collaborator admits them explicitly', async () => {
      world = await startHardeningWorld({
        users: [carol],
        entities: [mallory],
        consumerPermissions: ['account', 'email', 'team'],
        provider: {
          allowedWorkspaces: ['acme'],
          minimumWorkspaceRole: 'collaborator',
        },
      });
      expect((await signIn(MALLORY.uuid)).identity.userEntityRef).toBe(
        'user:default/mallory',
      );
    });
  });

  describe('3. a re-registered slug', () => {
    it('a uuid entry matches by uuid only: the new owner of the old slug is refused', async () => {
      world = await startHardeningWorld({
        users: [
          // ACME renamed itself to acme-corp …
          { ...JANE, workspaces: [{ ...ACME, slug: 'acme-corp' }] },
          // … and Mallory registered the free slug `acme`
          {
            ...MALLORY,
            workspaces: [
              {
                slug: 'acme',
                uuid: '{99999999-8c52-4b97-a4e0-7f2b9c5d1e83}',
                role: 'owner',
              },
            ],
          },
        ],
        entities: [jane, mallory],
        consumerPermissions: ['account', 'email', 'team'],
        provider: {
          // braces as Bitbucket writes them, any letter case
          allowedWorkspaces: [ACME.uuid!.toUpperCase()],
          workspaceOwnership: { enabled: true },
        },
      });
      const refused = await signIn(MALLORY.uuid);
      expect(refused.identity).toBeUndefined();
      expect(refused.error.name).toBe('NotAllowedError');
      const admitted = await signIn(JANE.uuid);
      expect(admitted.identity.ownershipEntityRefs).toEqual([
        'user:default/jane.doe',
        'group:default/acme-corp',
      ]);
      expect(world.emulator.calls().map(c => c.path)).toContain(
        `/2.0/user/workspaces/${encodeURIComponent(
          ACME.uuid!.toLowerCase(),
        )}/permission`,
      );
    });
  });

  describe('4. a local-part takeover', () => {
    it('emailLocalPartMatchingUserEntityName without allowedDomains stops the start-up', async () => {
      // else jane.doe@attacker.example signs in as user:default/jane.doe
      await expect(
        startHardeningWorld({
          users: [
            {
              ...MALLORY,
              emails: [
                {
                  email: 'jane.doe@attacker.example',
                  primary: true,
                  confirmed: true,
                },
              ],
            },
          ],
          entities: [catalogUser('jane.doe', {})],
          provider: resolvers('emailLocalPartMatchingUserEntityName'),
        }),
      ).rejects.toThrow(
        "At 'auth.providers.bitbucket.development.signIn.resolvers[0]': emailLocalPartMatchingUserEntityName needs allowedDomains: without it, anyone who confirms an address such as jane.doe@attacker.example on a Bitbucket account signs in as user:default/jane.doe. List the email domains your organisation owns, e.g. allowedDomains: [example.com].",
      );
    });
  });

  describe('5. a recycled username or a shared email on an account-id User', () => {
    const bob = catalogUser(
      'bob',
      {
        'bitbucket.org/account-id': BOB.accountId,
        'bitbucket.org/username': 'bob',
      },
      { profile: { email: 'bob@example.com' } },
    );

    it('the username resolver never signs another account in as it', async () => {
      world = await startHardeningWorld({
        users: [BOB, { ...MALLORY, username: 'bob' }],
        entities: [bob],
        provider: resolvers('usernameMatchingUserEntityAnnotation'),
      });
      const { identity, error } = await signIn(MALLORY.uuid);
      expect(identity).toBeUndefined();
      expect(error.message).toContain(
        'usernameMatchingUserEntityAnnotation: the matching User belongs to another Bitbucket account (its annotation bitbucket.org/account-id names another account)',
      );
    });

    it('nor does the email resolver, for an address both accounts confirmed', async () => {
      world = await startHardeningWorld({
        users: [
          {
            ...MALLORY,
            emails: [
              { email: 'bob@example.com', primary: true, confirmed: true },
            ],
          },
        ],
        entities: [bob],
        provider: resolvers('emailMatchingUserEntityProfileEmail'),
      });
      const { identity, error } = await signIn(MALLORY.uuid);
      expect(identity).toBeUndefined();
      expect(error.message).toContain(
        'emailMatchingUserEntityProfileEmail: the matching User belongs to another Bitbucket account (its annotation bitbucket.org/account-id names another account)',
      );
    });
  });

  describe('6. colliding fallback identities', () => {
    it('one account, one name: the uuid, whatever the email', async () => {
      const plus: SeedUser = {
        ...MALLORY,
        emails: [{ email: 'a+b@x.example', primary: true, confirmed: true }],
      };
      const minus: SeedUser = {
        ...BOB,
        workspaces: [],
        emails: [{ email: 'a-b@x.example', primary: true, confirmed: true }],
      };
      const long: SeedUser = {
        ...JANE,
        workspaces: [],
        emails: [
          {
            email: `${'x'.repeat(70)}@x.example`,
            primary: true,
            confirmed: true,
          },
        ],
      };
      world = await startHardeningWorld({
        users: [plus, minus, long],
        entities: [],
        provider: resolvers({
          resolver: 'emailMatchingUserEntityProfileEmail',
          dangerouslyAllowSignInWithoutUserInCatalog: true,
        }),
      });
      for (const account of [plus, minus, long]) {
        const ref = `user:default/${bare(account.uuid)}`;
        expect((await signIn(account.uuid)).identity).toEqual({
          type: 'user',
          userEntityRef: ref,
          ownershipEntityRefs: [ref],
        });
      }
    });
  });

  describe('7. messages tell the person what to do, not who else exists', () => {
    it('a refusal names no allowed workspace; the audit line has the detail', async () => {
      world = await startHardeningWorld({
        users: [MALLORY],
        entities: [mallory],
        consumerPermissions: ['account', 'email', 'team'],
        provider: { allowedWorkspaces: ['acme', 'secret-merger-co'] },
      });
      const { error } = await signIn(MALLORY.uuid);
      expect(error).toEqual({
        name: 'NotAllowedError',
        message:
          'Your Bitbucket account Mallory ({6d6d6d6d-1111-4222-8333-444444444444}) is not a member of a Bitbucket workspace that may sign in to this portal. Ask your Backstage admin which workspace to join, or sign in with another Bitbucket account.',
      });
      expect(decisions(world.logs).map(l => l.meta)).toEqual([
        expect.objectContaining({
          providerUser: MALLORY.uuid,
          workspaceCheck: 'refused',
          outcome: 'refused',
          reason:
            'not a member of any allowed workspace (allowed: acme, secret-merger-co; member of: none)',
        }),
      ]);
    });

    it('a fallback name that is a catalog User is refused without naming it', async () => {
      // an entity named like Mallory's fallback identity, bound to Jane
      const squatted = catalogUser(bare(MALLORY.uuid), {
        'bitbucket.org/user-id': JANE.uuid,
      });
      world = await startHardeningWorld({
        users: [MALLORY],
        entities: [squatted],
        provider: resolvers({
          resolver: 'accountIdMatchingUserEntityAnnotation',
          dangerouslyAllowSignInWithoutUserInCatalog: true,
        }),
      });
      const { identity, error } = await signIn(MALLORY.uuid);
      expect(identity).toBeUndefined();
      expect(error.message).not.toContain(`user:default/${bare(MALLORY.uuid)}`);
      expect(error.message).toContain(
        'accountIdMatchingUserEntityAnnotation: dangerouslyAllowSignInWithoutUserInCatalog would sign in as an existing catalog User that belongs to another account',
      );
      expect(decisions(world.logs)[0].meta?.reason).toContain(
        `user:default/${bare(MALLORY.uuid)}`,
      );
    });
  });

  describe('8. one account cannot spend the portal’s Bitbucket budget', () => {
    it('after 5 sign-ins in an hour, an account costs one REST call per sign-in', async () => {
      world = await startHardeningWorld({
        users: [MALLORY, JANE],
        entities: [mallory, jane],
      });
      const rest = () =>
        world!.emulator.calls().filter(c => c.path.startsWith('/2.0/')).length;
      for (let i = 0; i < 30; i++) {
        expect((await signIn(MALLORY.uuid)).identity.userEntityRef).toBe(
          'user:default/mallory',
        );
      }
      // 5 full sign-ins (user, emails), then the cached profile after /2.0/user
      expect(rest()).toBe(5 * 2 + 25 * 1);
      expect(
        world.logs.filter(l =>
          l.message.startsWith('Bitbucket account {6d6d6d6d'),
        ),
      ).toEqual([
        expect.objectContaining({
          level: 'warn',
          message:
            'Bitbucket account {6d6d6d6d-1111-4222-8333-444444444444} signed in 5 times within an hour: its next sign-ins this hour reuse its profile after GET /2.0/user instead of fetching it again, so that it cannot spend the consumer’s rate budget.',
        }),
      ]);
      // everyone else still signs in
      world.emulator.resetCalls();
      expect((await signIn(JANE.uuid)).identity.userEntityRef).toBe(
        'user:default/jane.doe',
      );
      expect(rest()).toBe(2);
    });
  });

  describe('8b. no account outside the allowed workspaces changes how others sign in (issue 20)', () => {
    it('an account in no allowed workspace, refused 6 times, leaves everyone’s sign-in one parallel round', async () => {
      world = await startHardeningWorld({
        users: [MALLORY, JANE],
        entities: [mallory, jane],
        consumerPermissions: ['account', 'email', 'team'],
        provider: { allowedWorkspaces: ['acme'] },
      });
      for (let i = 0; i < 6; i++) {
        expect((await signIn(MALLORY.uuid)).error?.name).toBe(
          'NotAllowedError',
        );
      }
      world.emulator.resetCalls();
      // a slow GET /2.0/user shows whether the others waited for it
      world.emulator.setFaults({
        endpoints: { '/2.0/user': { latencyMs: 150 } },
      });
      expect((await signIn(JANE.uuid)).identity.userEntityRef).toBe(
        'user:default/jane.doe',
      );
      const calls = world.emulator.calls();
      const user = calls.find(c => c.path === '/2.0/user')!;
      const emails = calls.find(c => c.path === '/2.0/user/emails')!;
      expect(calls.filter(c => c.path === '/2.0/user')).toHaveLength(1);
      expect(emails.startedAt).toBeLessThan(user.endedAt);
    });

    it('a kept profile keeps its fetch time: the roles of an account over its budget are re-read profileCacheTtl after they were fetched', async () => {
      world = await startHardeningWorld({
        users: [JANE],
        entities: [jane],
        consumerPermissions: ['account', 'email', 'team'],
        provider: { allowedWorkspaces: ['acme'] },
      });
      let now = Date.now();
      jest.spyOn(Date, 'now').mockImplementation(() => now);
      try {
        // 5 full sign-ins: the fifth keeps its profile (fetched now)
        for (let i = 0; i < 5; i++) await signIn(JANE.uuid);
        now += 29 * 60_000;
        // the sixth reuses the kept profile, 29 minutes old
        await world.signIn(JANE.uuid);
        world.emulator.resetCalls();
        now += 2 * 60_000; // 31 minutes after the roles were read (profileCacheTtl 30m)
        const refresh = await world.refresh();
        expect(refresh.status).toBe(200);
        const rest = world.emulator
          .calls()
          .filter(c => c.path.startsWith('/2.0/'))
          .map(c => c.path);
        expect(rest).toEqual(['/2.0/user/workspaces/acme/permission']);
      } finally {
        jest.restoreAllMocks();
      }
    });
  });

  describe('9. a cached profile matches the settings that made it', () => {
    it('a profile cached under other workspace settings is a miss, never a wrong answer or a sign-out', async () => {
      const cache = sharedCache();
      world = await startHardeningWorld({
        users: [JANE],
        entities: [jane],
        consumerPermissions: ['account', 'email', 'team'],
        provider: { allowedWorkspaces: ['acme'] },
        features: [cache.factory],
      });
      await world.signIn(JANE.uuid);
      const cookies = [
        'bitbucket-refresh-token',
        'bitbucket-granted-scope',
      ].map(
        name =>
          `${name}=${
            world!.agent.jar.getCookie(name, {
              domain: '127.0.0.1',
              path: '/api/auth/bitbucket',
              script: false,
              secure: false,
            })?.value
          }; Path=/api/auth/bitbucket`,
      );
      // the admin changes the settings and restarts: a backend with the new
      // config, on the same cache, gets the session's next refresh
      const refreshOn = async (provider: JsonObject) => {
        const next = await startBackend({
          logger: captureLogger(() => {}),
          entities: [jane],
          emulatorUrl: world!.emulator.url,
          provider,
          features: [cache.factory],
        });
        try {
          const agent = request.agent(next.target);
          for (const cookie of cookies) {
            agent.jar.setCookie(cookie, '127.0.0.1', '/api/auth/bitbucket');
          }
          world!.emulator.resetCalls();
          const res = await agent
            .get(
              '/api/auth/bitbucket/refresh?optional&env=development&scope=account',
            )
            .set('X-Requested-With', 'XMLHttpRequest');
          // the next request carries the session's current cookie
          const rotated = agent.jar.getCookie('bitbucket-refresh-token', {
            domain: '127.0.0.1',
            path: '/api/auth/bitbucket',
            script: false,
            secure: false,
          })?.value;
          cookies[0] = `bitbucket-refresh-token=${rotated}; Path=/api/auth/bitbucket`;
          return res;
        } finally {
          await next.stop();
        }
      };

      const member = await refreshOn({
        allowedWorkspaces: ['acme'],
        minimumWorkspaceRole: 'member',
      });
      expect(member.status).toBe(200);
      expect(member.body.backstageIdentity.identity.userEntityRef).toBe(
        'user:default/jane.doe',
      );

      const owner = await refreshOn({
        allowedWorkspaces: ['acme'],
        minimumWorkspaceRole: 'owner',
      });
      // Jane is a member, not an owner: refused from a fresh answer of
      // Bitbucket, not from the cached one
      expect(owner.status).toBe(401);
      expect(owner.body.error.message).toContain(
        "has the role 'member' in the workspace 'acme', and this portal needs at least the role 'owner' there",
      );
      expect(world.emulator.calls().map(c => c.path)).toContain(
        '/2.0/user/workspaces/acme/permission',
      );
    });
  });

  describe('10. bounded work per sign-in', () => {
    it('one deadline for all the calls of a sign-in, pages included', async () => {
      world = await startHardeningWorld({
        users: [
          {
            ...JANE,
            // 5 pages of 100: each page answers within requestTimeout, all
            // of them not within signInTimeout
            emails: Array.from({ length: 450 }, (_, i) => ({
              email: `jane${i}@example.com`,
              primary: i === 449,
              confirmed: true,
            })),
          },
        ],
        entities: [jane],
        provider: { signInTimeout: 500, requestTimeout: 10000 },
      });
      world.emulator.setFaults({
        endpoints: { '/2.0/user/emails': { latencyMs: 150 } },
      });
      const { error } = await signIn(JANE.uuid);
      expect(error).toEqual({
        name: 'ServiceUnavailableError',
        message:
          'Bitbucket did not answer the calls of this sign-in within signInTimeout (500 ms): GET /2.0/user/emails was still running. Try again; if it persists, check that Bitbucket is reachable from the backend or raise signInTimeout.',
      });
    });

    it('a 429 whose Retry-After ends past the deadline is not waited for', async () => {
      world = await startHardeningWorld({
        users: [JANE],
        entities: [jane],
        provider: { signInTimeout: 2000 },
      });
      world.emulator.setFaults({
        endpoints: {
          '/2.0/user': { status: 429, retryAfterSeconds: 5, times: 1 },
        },
      });
      const started = Date.now();
      const { error } = await signIn(JANE.uuid);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(error.message).toBe(
        'Bitbucket rate limit reached for this OAuth consumer (HTTP 429 on GET /2.0/user). Try again in a few minutes.',
      );
    });
  });
});
