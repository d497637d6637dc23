import { SeedUser } from '@internal/bitbucket-cloud-emulator';
import {
  APP_ORIGIN,
  catalogUser,
  CLIENT_SECRET,
  SignInWorld,
  startSignInWorld,
} from './__testUtils__/backend';

const JANE: SeedUser = {
  uuid: '{4f1c2b7a-8d3e-4a5b-9c6d-7e8f9a0b1c2d}',
  accountId: '557058:4f1c2b7a-8d3e-4a5b-9c6d-7e8f9a0b1c2d',
  username: 'jdoe',
  nickname: 'jdoe',
  displayName: 'Jane Doe',
  emails: [
    { email: 'jane@personal.example', primary: false, confirmed: true },
    { email: 'jane.doe@example.com', primary: true, confirmed: true },
  ],
};
const CAROL: SeedUser = {
  uuid: '{9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d}',
  accountId: '5c65cab48bcc9e016aeece31',
  nickname: 'carol',
  displayName: 'Carol Contractor',
  emails: [
    { email: 'carol@contractor.example', primary: true, confirmed: true },
  ],
};
const MALLORY: SeedUser = {
  uuid: '{00000000-1111-4222-8333-444444444444}',
  accountId: '557058:00000000-1111-4222-8333-444444444444',
  username: 'mallory',
  nickname: 'mallory',
  displayName: 'Mallory',
  emails: [{ email: 'jane.doe@example.com', primary: true, confirmed: false }],
};

const janeEntity = catalogUser(
  'jane.doe',
  { 'bitbucket.org/user-id': JANE.uuid.toUpperCase().replace(/[{}]/g, '') },
  { profile: { email: 'jane.doe@example.com' }, memberOf: ['platform'] },
);

describe('bitbucketAuthenticator against the Bitbucket Cloud emulator', () => {
  let world: SignInWorld;
  afterEach(async () => {
    await world?.stop();
  });

  it('signs in: token exchange, then user and emails in parallel, to the catalog user', async () => {
    world = await startSignInWorld({
      users: [JANE, CAROL],
      entities: [janeEntity],
    });
    // 150 ms per profile call: calls made one after the other cannot overlap
    world.emulator.setFaults({
      endpoints: {
        '/2.0/user': { latencyMs: 150 },
        '/2.0/user/emails': { latencyMs: 150 },
      },
    });
    const message = await world.signIn(JANE.uuid);

    expect(message.error).toBeUndefined();
    expect(message.type).toBe('authorization_response');
    expect(message.response.profile).toEqual({
      email: 'jane.doe@example.com',
      displayName: 'Jane Doe',
      picture: expect.stringMatching(new RegExp(`^${world.emulator.url}/.+`)),
    });
    expect(message.response.providerInfo).toEqual({
      accessToken: expect.any(String),
      scope: 'account email',
      expiresInSeconds: 7200,
    });
    expect(message.response.backstageIdentity.identity).toEqual({
      type: 'user',
      userEntityRef: 'user:default/jane.doe',
      ownershipEntityRefs: ['user:default/jane.doe', 'group:default/platform'],
    });
    expect(world.refreshToken()).toEqual(expect.any(String));

    const calls = world.emulator.calls();
    expect(calls.map(c => `${c.method} ${c.path} ${c.status}`).sort()).toEqual(
      [
        'GET /2.0/user 200',
        'GET /2.0/user/emails 200',
        'GET /site/oauth2/authorize 200',
        'POST /site/oauth2/access_token 200',
        'POST /site/oauth2/authorize 302',
      ].sort(),
    );
    const user = calls.find(c => c.path === '/2.0/user')!;
    const emails = calls.find(c => c.path === '/2.0/user/emails')!;
    const token = calls.find(c => c.path === '/site/oauth2/access_token')!;
    expect(token.grantType).toBe('authorization_code');
    expect(user.startedAt).toBeGreaterThanOrEqual(token.endedAt - 1);
    // both profile calls were in flight at the same time
    expect(user.startedAt).toBeLessThan(emails.endedAt);
    expect(emails.startedAt).toBeLessThan(user.endedAt);
  });

  it('follows the pages of /2.0/user/emails to the primary confirmed address', async () => {
    const many = Array.from({ length: 130 }, (_, i) => ({
      email: `old${i}@example.com`,
      primary: false,
      confirmed: true,
    }));
    world = await startSignInWorld({
      users: [
        {
          ...JANE,
          emails: [
            ...many,
            { email: 'jane.doe@example.com', primary: true, confirmed: true },
          ],
        },
      ],
      entities: [janeEntity],
      provider: {
        signIn: {
          resolvers: [{ resolver: 'emailMatchingUserEntityProfileEmail' }],
        },
      },
    });
    const message = await world.signIn(JANE.uuid);
    expect(message.response.backstageIdentity.identity.userEntityRef).toBe(
      'user:default/jane.doe',
    );
    expect(
      world.emulator
        .calls()
        .filter(c => c.path === '/2.0/user/emails')
        .map(c => c.query),
    ).toEqual(['pagelen=100', 'pagelen=100&page=2']);
  });

  it('refreshes with a rotated refresh token, and the old one stops working', async () => {
    world = await startSignInWorld({
      users: [JANE],
      entities: [janeEntity],
      provider: { profileCacheTtl: 0 },
    });
    await world.signIn(JANE.uuid);
    const first = world.refreshToken()!;
    world.emulator.resetCalls();

    const res = await world.refresh();
    expect(res.status).toBe(200);
    expect(res.body.backstageIdentity.identity.userEntityRef).toBe(
      'user:default/jane.doe',
    );
    expect(res.body.profile.email).toBe('jane.doe@example.com');
    const second = world.refreshToken()!;
    expect(second).toEqual(expect.any(String));
    expect(second).not.toBe(first);
    expect(
      world.emulator
        .calls()
        .map(c => `${c.method} ${c.path} ${c.grantType ?? ''}`.trim())
        .sort(),
    ).toEqual(
      [
        'GET /2.0/user',
        'GET /2.0/user/emails',
        'POST /site/oauth2/access_token refresh_token',
      ].sort(),
    );

    // a second refresh uses the rotated token and works again
    expect((await world.refresh()).status).toBe(200);
  });

  it('asks the user to sign in again when the refresh token was revoked', async () => {
    // without the cache every refresh reaches Bitbucket's token endpoint
    world = await startSignInWorld({
      users: [JANE],
      entities: [janeEntity],
      provider: { profileCacheTtl: 0 },
    });
    await world.signIn(JANE.uuid);
    world.emulator.revokeRefreshTokens();
    const res = await world.refresh();
    expect(res.status).toBe(401);
    expect(res.body.error.name).toBe('AuthenticationError');
    expect(res.body.error.message).toMatch(
      /^Refresh failed; caused by AuthenticationError: Your Bitbucket session has expired or was revoked \(Bitbucket said: ".+"\)\. Sign in again\.$/,
    );
  });

  it('works with the pre-2026 token response (`scopes`, no rotation)', async () => {
    world = await startSignInWorld({
      users: [JANE],
      entities: [janeEntity],
      emulator: { legacyScopesField: true, rotateRefreshTokens: false },
    });
    const message = await world.signIn(JANE.uuid);
    expect(message.response.providerInfo.scope).toBe('account email');
    const first = world.refreshToken();
    expect((await world.refresh()).status).toBe(200);
    expect(world.refreshToken()).toBe(first);
  });

  describe('errors name the fix', () => {
    it('user cancelled on Bitbucket', async () => {
      world = await startSignInWorld({ users: [JANE], entities: [janeEntity] });
      const message = await world.signIn(JANE.uuid, 'cancel');
      expect(message.error).toEqual({
        name: 'NotAllowedError',
        message:
          'Sign-in was cancelled: access to your Bitbucket account was not granted. To sign in, try again and choose "Grant access" on Bitbucket\'s page.',
      });
      expect(message.response).toBeUndefined();
    });

    it('the consumer lacks the Email permission (invalid_scope)', async () => {
      world = await startSignInWorld({
        users: [JANE],
        entities: [janeEntity],
        consumerPermissions: ['account'],
      });
      const start = await world.agent.get(
        `/api/auth/bitbucket/start?env=development&flow=popup&origin=${encodeURIComponent(
          APP_ORIGIN,
        )}`,
      );
      // Bitbucket redirects straight back with the error, no consent page
      const authorize = await fetch(start.header.location, {
        redirect: 'manual',
      });
      const back = new URL(authorize.headers.get('location')!);
      const frame = await world.agent.get(`${back.pathname}${back.search}`);
      const message = JSON.parse(
        decodeURIComponent(
          frame.text.match(/decodeURIComponent\('(.+?)'\)/)![1],
        ),
      );
      expect(message.error).toEqual({
        name: 'NotAllowedError',
        message:
          'The Bitbucket OAuth consumer lacks a permission this portal requests: tick "Account: Email" in Bitbucket under Workspace settings > OAuth consumers > Edit, then sign in again (Bitbucket said: "These requested scopes are beyond the OAuth client\'s own scopes: email").',
      });
    });

    it('bad client secret', async () => {
      world = await startSignInWorld({
        users: [JANE],
        entities: [janeEntity],
        provider: { clientSecret: 'not-the-secret' },
      });
      const message = await world.signIn(JANE.uuid);
      expect(message.error.name).toBe('AuthenticationError');
      expect(message.error.message).toMatch(
        /^Bitbucket rejected the OAuth consumer credentials \(invalid_client\)( \(Bitbucket said: ".+"\))?\. Check that auth\.providers\.bitbucket\.<env>\.clientId and clientSecret are the Key and Secret of the consumer \(Workspace settings > OAuth consumers\)\.$/,
      );
      expect(message.error.message).not.toContain('not-the-secret');
    });

    it('a user who is not in the catalog', async () => {
      world = await startSignInWorld({
        users: [JANE, CAROL],
        entities: [janeEntity],
      });
      const message = await world.signIn(CAROL.uuid);
      expect(message.error).toEqual({
        name: 'NotFoundError',
        message: `Signed in to Bitbucket as Carol Contractor (${CAROL.uuid}), but no matching User was found in the Backstage catalog. Tried userIdMatchingUserEntityAnnotation: no User has the annotation bitbucket.org/user-id: '${CAROL.uuid}'. Ask your Backstage admin to add a User entity for this account, e.g. with the annotation bitbucket.org/user-id: '${CAROL.uuid}'.`,
      });
    });

    it('an unconfirmed email never signs in as the catalog user who owns it', async () => {
      world = await startSignInWorld({
        users: [JANE, MALLORY],
        entities: [janeEntity],
        provider: {
          signIn: {
            resolvers: [{ resolver: 'emailMatchingUserEntityProfileEmail' }],
          },
        },
      });
      const message = await world.signIn(MALLORY.uuid);
      expect(message.response).toBeUndefined();
      expect(message.error.name).toBe('NotFoundError');
      expect(message.error.message).toContain(
        'emailMatchingUserEntityProfileEmail: the Bitbucket account has no confirmed primary email address (none of its addresses is both primary and confirmed); confirm the address and make it primary at https://bitbucket.org/account/settings/email/',
      );
    });

    it('a Bitbucket answer that hangs past requestTimeout', async () => {
      world = await startSignInWorld({
        users: [JANE],
        entities: [janeEntity],
        provider: { requestTimeout: 300 },
      });
      world.emulator.setFaults({ endpoints: { '/2.0/user': { hang: true } } });
      const started = Date.now();
      const message = await world.signIn(JANE.uuid);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(message.error).toEqual({
        name: 'ServiceUnavailableError',
        message: `Bitbucket did not answer GET /2.0/user within 300 ms. Try again; if it persists, check that ${world.emulator.url} is reachable from the backend or raise requestTimeout.`,
      });
    });

    it.each([
      [
        { status: 500 },
        /^Bitbucket answered GET \/2\.0\/user\/emails with HTTP 500( \(Bitbucket said: ".+"\))?\. Try again later; if it persists check https:\/\/bitbucket\.status\.atlassian\.com\.$/,
      ],
      [
        { malformedJson: true },
        /^Bitbucket answered GET \/2\.0\/user\/emails with a body that is not valid JSON\./,
      ],
      [
        { status: 429, retryAfterSeconds: 30 },
        /^Bitbucket rate limit reached for this OAuth consumer \(HTTP 429 on GET \/2\.0\/user\/emails\)\./,
      ],
    ])('a faulty /2.0/user/emails answer %j', async (fault, expected) => {
      world = await startSignInWorld({ users: [JANE], entities: [janeEntity] });
      world.emulator.setFaults({ endpoints: { '/2.0/user/emails': fault } });
      const message = await world.signIn(JANE.uuid);
      expect(message.error.name).toBe('ServiceUnavailableError');
      expect(message.error.message).toMatch(expected);
    });

    it('an answer without a uuid', async () => {
      world = await startSignInWorld({ users: [JANE], entities: [janeEntity] });
      world.emulator.setFaults({
        endpoints: { '/2.0/user': { omitFields: ['uuid'] } },
      });
      const message = await world.signIn(JANE.uuid);
      expect(message.error).toEqual({
        name: 'ServiceUnavailableError',
        message:
          "Bitbucket's answer to GET /2.0/user lacks 'uuid'; cannot identify the user. Try again later.",
      });
    });

    it('never puts the secret in an error', async () => {
      world = await startSignInWorld({
        users: [JANE, CAROL],
        entities: [janeEntity],
      });
      world.emulator.setFaults({
        endpoints: { '/site/oauth2/access_token': { status: 503 } },
      });
      const message = await world.signIn(JANE.uuid);
      expect(message.error.message).toMatch(
        /^Bitbucket's token endpoint answered HTTP 503/,
      );
      expect(JSON.stringify(message)).not.toContain(CLIENT_SECRET);
    });
  });
});

describe('workspace access control, ownership and the rate budget', () => {
  let world: SignInWorld;
  afterEach(async () => {
    await world?.stop();
  });

  const workspaces = (...slugs: string[]) =>
    slugs.map(slug => ({ slug, role: 'member' as const }));
  const TEAM = ['account', 'email', 'team'];

  it('signs in a member of an allowed workspace found on page 2', async () => {
    const many = Array.from({ length: 120 }, (_, i) => `other-${i}`);
    world = await startSignInWorld({
      users: [{ ...JANE, workspaces: workspaces(...many, 'acme') }],
      entities: [janeEntity],
      consumerPermissions: TEAM,
      provider: { allowedWorkspaces: ['ACME'] },
    });
    const message = await world.signIn(JANE.uuid);
    expect(message.error).toBeUndefined();
    expect(message.response.backstageIdentity.identity.userEntityRef).toBe(
      'user:default/jane.doe',
    );
    expect(message.response.providerInfo.scope).toBe('account email team');
    expect(
      world.emulator
        .calls()
        .filter(c => c.path === '/2.0/user/workspaces')
        .map(c => c.query),
    ).toEqual(['pagelen=100', 'pagelen=100&page=2']);
    expect(
      world.logs
        .filter(l => l.message === 'Bitbucket sign-in decision')
        .map(l => l.meta),
    ).toEqual([
      expect.objectContaining({
        providerUser: JANE.uuid,
        accountId: JANE.accountId,
        resolver: 'userIdMatchingUserEntityAnnotation',
        workspaceCheck: 'passed',
        outcome: 'signed-in',
        userEntityRef: 'user:default/jane.doe',
      }),
    ]);
  });

  it('fetches user, emails and workspaces in one parallel round (workspaceMembershipSource: bitbucket)', async () => {
    // with the catalog source, the workspace calls of a miss wait for the
    // uuid of GET /2.0/user (src/membershipSource.ts)
    world = await startSignInWorld({
      users: [{ ...JANE, workspaces: workspaces('acme') }],
      entities: [janeEntity],
      consumerPermissions: TEAM,
      provider: {
        allowedWorkspaces: ['acme'],
        minimumWorkspaceRole: 'member',
        workspaceMembershipSource: 'bitbucket',
      },
    });
    const slow = { latencyMs: 150 };
    world.emulator.setFaults({
      endpoints: {
        '/2.0/user': slow,
        '/2.0/user/emails': slow,
        '/2.0/user/workspaces': slow,
        '/2.0/user/workspaces/acme/permission': slow,
      },
    });
    await world.signIn(JANE.uuid);
    const rest = world.emulator.calls().filter(c => c.path.startsWith('/2.0/'));
    expect(rest.map(c => c.path).sort()).toEqual([
      '/2.0/user',
      '/2.0/user/emails',
      '/2.0/user/workspaces',
      '/2.0/user/workspaces/acme/permission',
    ]);
    const lastStart = Math.max(...rest.map(c => c.startedAt));
    const firstEnd = Math.min(...rest.map(c => c.endedAt));
    expect(lastStart).toBeLessThan(firstEnd);
  });

  it('refuses a user in none of the allowed workspaces, before any catalog lookup', async () => {
    world = await startSignInWorld({
      users: [{ ...JANE, workspaces: workspaces('elsewhere') }],
      entities: [janeEntity],
      consumerPermissions: TEAM,
      provider: { allowedWorkspaces: ['acme', 'platform'] },
    });
    const message = await world.signIn(JANE.uuid);
    expect(message.error).toEqual({
      name: 'NotAllowedError',
      message: `Your Bitbucket account Jane Doe (${JANE.uuid}) is not a member of a Bitbucket workspace that may sign in to this portal. Ask your Backstage admin which workspace to join, or sign in with another Bitbucket account.`,
    });
    expect(
      world.logs.find(l => l.message === 'Bitbucket sign-in decision')?.meta,
    ).toEqual(
      expect.objectContaining({
        providerUser: JANE.uuid,
        workspaceCheck: 'refused',
        outcome: 'refused',
        reason:
          'not a member of any allowed workspace (allowed: acme, platform; member of: elsewhere)',
      }),
    );
  });

  it('refuses a role below minimumWorkspaceRole', async () => {
    world = await startSignInWorld({
      users: [
        { ...JANE, workspaces: [{ slug: 'acme', role: 'collaborator' }] },
      ],
      entities: [janeEntity],
      consumerPermissions: TEAM,
      provider: { allowedWorkspaces: ['acme'], minimumWorkspaceRole: 'member' },
    });
    const message = await world.signIn(JANE.uuid);
    expect(message.error).toEqual({
      name: 'NotAllowedError',
      message: `Your Bitbucket account Jane Doe (${JANE.uuid}) has the role 'collaborator' in the workspace 'acme', and this portal needs at least the role 'member' there. Ask an admin of 'acme' to make you a member, or sign in with another Bitbucket account.`,
    });
  });

  it('adds the allowed workspaces to the ownership, after memberOf', async () => {
    world = await startSignInWorld({
      users: [{ ...JANE, workspaces: workspaces('acme', 'platform', 'hobby') }],
      entities: [janeEntity],
      consumerPermissions: TEAM,
      provider: {
        allowedWorkspaces: ['acme', 'platform'],
        workspaceOwnership: { enabled: true, prefix: 'bitbucket-' },
      },
    });
    const message = await world.signIn(JANE.uuid);
    expect(
      message.response.backstageIdentity.identity.ownershipEntityRefs,
    ).toEqual([
      'user:default/jane.doe',
      'group:default/platform',
      'group:default/bitbucket-acme',
      'group:default/bitbucket-platform',
    ]);
  });

  it('answers a refresh within profileCacheTtl from the cache, and re-checks the roles alone after it', async () => {
    world = await startSignInWorld({
      users: [{ ...JANE, workspaces: workspaces('acme') }],
      entities: [janeEntity],
      consumerPermissions: TEAM,
      provider: { allowedWorkspaces: ['acme'], profileCacheTtl: '1500ms' },
    });
    await world.signIn(JANE.uuid);
    world.emulator.updateUser(JANE.uuid, { workspaces: [] });
    world.emulator.resetCalls();

    const cached = await world.refresh();
    expect(cached.status).toBe(200);
    expect(cached.body.backstageIdentity.identity.userEntityRef).toBe(
      'user:default/jane.doe',
    );
    // the access token has two hours to live: no call to Bitbucket at all
    expect(world.emulator.calls()).toEqual([]);

    await new Promise(r => setTimeout(r, 1600));
    const refused = await world.refresh();
    // the roles alone, with the access token in hand: no rotation
    expect(world.emulator.calls().map(c => `${c.method} ${c.path}`)).toEqual([
      'GET /2.0/user/workspaces/acme/permission',
    ]);
    expect(refused.status).toBe(401);
    expect(refused.body.error.message).toBe(
      `Refresh failed; caused by NotAllowedError: Your Bitbucket account Jane Doe (${JANE.uuid}) is not a member of a Bitbucket workspace that may sign in to this portal. Ask your Backstage admin which workspace to join, or sign in with another Bitbucket account.`,
    );
  });

  it('retries once after a 429 with Retry-After', async () => {
    world = await startSignInWorld({ users: [JANE], entities: [janeEntity] });
    world.emulator.setFaults({
      endpoints: {
        '/2.0/user': { status: 429, retryAfterSeconds: 1, times: 1 },
      },
    });
    const message = await world.signIn(JANE.uuid);
    expect(message.error).toBeUndefined();
    const user = world.emulator.calls().filter(c => c.path === '/2.0/user');
    expect(user.map(c => c.status)).toEqual([429, 200]);
    expect(user[1].startedAt - user[0].endedAt).toBeGreaterThanOrEqual(950);
    expect(
      world.logs.some(l => l.level === 'warn' && /HTTP 429/.test(l.message)),
    ).toBe(true);
  });

  it('gives up after a second 429 with a clear error', async () => {
    world = await startSignInWorld({ users: [JANE], entities: [janeEntity] });
    world.emulator.setFaults({
      endpoints: {
        '/2.0/user': { status: 429, retryAfterSeconds: 1, times: 2 },
      },
    });
    const message = await world.signIn(JANE.uuid);
    expect(message.error).toEqual({
      name: 'ServiceUnavailableError',
      message:
        'Bitbucket rate limit reached for this OAuth consumer (HTTP 429 on GET /2.0/user). Try again in a few minutes.',
    });
  });

  it('names a removed endpoint (410)', async () => {
    world = await startSignInWorld({
      users: [{ ...JANE, workspaces: workspaces('acme') }],
      entities: [janeEntity],
      consumerPermissions: TEAM,
      provider: { allowedWorkspaces: ['acme'] },
    });
    world.emulator.setFaults({
      endpoints: { '/2.0/user/workspaces': { status: 410 } },
    });
    const message = await world.signIn(JANE.uuid);
    expect(message.error.name).toBe('ServiceUnavailableError');
    expect(message.error.message).toMatch(
      /^Bitbucket answered GET \/2\.0\/user\/workspaces with HTTP 410 Gone( \(Bitbucket said: ".+"\))?: Bitbucket removed this endpoint\. Upgrade this module\.$/,
    );
  });
});
