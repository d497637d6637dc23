import { BitbucketCloudEmulator, startEmulator } from './server';
import {
  authorizeUrl,
  basic,
  DEMO_CLIENT,
  DEMO_USERS,
  getCode,
  httpRequest,
  postToken,
} from './test-helpers';

const BASIC = basic(DEMO_CLIENT.id, DEMO_CLIENT.secret);

describe('authorize endpoint', () => {
  let emulator: BitbucketCloudEmulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(() => emulator.close());

  it('answers an unknown client_id with a 400 HTML page, not a redirect', async () => {
    const res = await httpRequest(
      authorizeUrl(emulator, { client_id: 'nobody' }),
    );
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toContain('<h1>Invalid client_id</h1>');
    expect(res.text).toContain(
      'no OAuth consumer has the key &quot;nobody&quot;',
    );
  });

  it('accepts a redirect_uri that extends the callback URL (prefix rule)', async () => {
    const res = await httpRequest(
      authorizeUrl(emulator, {
        redirect_uri: `${DEMO_CLIENT.callbackUrl}/handler/frame`,
      }),
    );
    expect(res.status).toBe(200);
    expect(res.text).toContain('<h1>Authorize backstage-demo</h1>');
  });

  it('answers a redirect_uri outside the callback URL with the misconfiguration page', async () => {
    const res = await httpRequest(
      authorizeUrl(emulator, {
        redirect_uri: 'http://evil.example/api/auth/bitbucket',
      }),
    );
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toContain('<h1>Invalid redirect_uri</h1>');
    expect(res.text).toContain(
      'This integration is misconfigured. Contact the vendor for assistance.',
    );
    await expect(
      emulator.authorize(
        authorizeUrl(emulator, { redirect_uri: 'http://evil.example/cb' }),
        DEMO_USERS.jane,
      ),
    ).rejects.toThrow(
      'HTTP 400: Invalid redirect_uri — This integration is misconfigured. Contact the vendor for assistance.',
    );
  });

  it('redirects to the callback URL when redirect_uri is omitted', async () => {
    const url = new URL(authorizeUrl(emulator, { state: 's1' }));
    url.searchParams.delete('redirect_uri');
    const location = new URL(
      await emulator.authorize(url.toString(), DEMO_USERS.jane),
    );
    expect(`${location.origin}${location.pathname}`).toBe(
      DEMO_CLIENT.callbackUrl,
    );
    expect(location.searchParams.get('state')).toBe('s1');
  });

  it('redirects with invalid_scope naming the scopes beyond the consumer, echoing state', async () => {
    const res = await httpRequest(
      authorizeUrl(emulator, {
        scope: 'account repository pipeline',
        state: 'st+/=ä',
      }),
    );
    expect(res.status).toBe(302);
    const location = new URL(res.headers.location!);
    expect(`${location.origin}${location.pathname}`).toBe(
      DEMO_CLIENT.redirectUri,
    );
    expect([...location.searchParams.keys()]).toEqual([
      'error',
      'error_description',
      'state',
    ]);
    expect(location.searchParams.get('error')).toBe('invalid_scope');
    expect(location.searchParams.get('error_description')).toBe(
      "These requested scopes are beyond the OAuth client's own scopes: repository pipeline",
    );
    expect(location.searchParams.get('state')).toBe('st+/=ä');
  });

  it('redirects with unsupported_response_type for anything but code', async () => {
    const res = await httpRequest(
      authorizeUrl(emulator, { response_type: 'token', state: 'x' }),
    );
    expect(res.status).toBe(302);
    const location = new URL(res.headers.location!);
    expect(location.searchParams.get('error')).toBe(
      'unsupported_response_type',
    );
    expect(location.searchParams.get('state')).toBe('x');
  });

  it('shows a consent page listing the scopes and one labelled radio per user', async () => {
    const res = await httpRequest(
      authorizeUrl(emulator, { scope: 'account email' }),
    );
    expect(res.status).toBe(200);
    expect(res.text).toContain('<code>account</code>');
    expect(res.text).toContain('<code>email</code>');
    expect(res.text).not.toContain('<code>team</code>');
    expect(res.text).toContain(
      '<form method="post" action="/site/oauth2/authorize">',
    );
    expect(res.text).toContain(
      '<button type="submit" name="decision" value="grant">Grant access</button>',
    );
    expect(res.text).toContain(
      '<button type="submit" name="decision" value="cancel" formnovalidate>Cancel</button>',
    );
    const radios = [
      ...res.text.matchAll(
        /<input type="radio" id="([^"]+)" name="account" value="([^"]+)"/g,
      ),
    ];
    expect(radios.map(r => r[2])).toEqual(Object.values(DEMO_USERS));
    for (const [, id] of radios) {
      expect(res.text).toContain(`<label for="${id}">`);
    }
    expect(res.text).toContain(
      '<label for="account-0">Jane Doe (jdoe)</label>',
    );
    expect(res.text).toContain('jane.doe@example.com (unconfirmed)');
    expect(res.text).not.toMatch(/<(script|link|img)\b/);
  });

  it('grants: redirects to redirect_uri with a code and the exact state', async () => {
    const location = new URL(
      await emulator.authorize(
        authorizeUrl(emulator, { scope: 'account', state: 'abc 123&x=y' }),
        DEMO_USERS.bob,
      ),
    );
    expect(`${location.origin}${location.pathname}`).toBe(
      DEMO_CLIENT.redirectUri,
    );
    expect([...location.searchParams.keys()]).toEqual(['code', 'state']);
    expect(location.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(location.searchParams.get('state')).toBe('abc 123&x=y');
  });

  it('grants without state: the redirect carries no state', async () => {
    const location = new URL(
      await emulator.authorize(authorizeUrl(emulator), DEMO_USERS.jane),
    );
    expect([...location.searchParams.keys()]).toEqual(['code']);
  });

  it('cancels: redirects with access_denied and the state', async () => {
    const location = new URL(
      await emulator.authorize(
        authorizeUrl(emulator, { state: 'q' }),
        DEMO_USERS.jane,
        'cancel',
      ),
    );
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('error_description')).toBe(
      'The user denied access to the application.',
    );
    expect(location.searchParams.get('state')).toBe('q');
    expect(location.searchParams.get('code')).toBeNull();
  });

  it('refuses to consent as a user the page does not offer', async () => {
    await expect(
      emulator.authorize(
        authorizeUrl(emulator),
        '{00000000-0000-4000-8000-000000000000}',
      ),
    ).rejects.toThrow(
      'offers no account with uuid {00000000-0000-4000-8000-000000000000}',
    );
  });

  it('rejects a grant posted without an account', async () => {
    const res = await httpRequest(`${emulator.url}/site/oauth2/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: DEMO_CLIENT.id,
        response_type: 'code',
        decision: 'grant',
      }).toString(),
    });
    expect(res.status).toBe(400);
    expect(res.text).toContain('<h1>Choose an account</h1>');
  });
});

describe('token endpoint', () => {
  let emulator: BitbucketCloudEmulator;
  beforeEach(async () => {
    emulator = await startEmulator();
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await emulator.close();
  });

  const exchange = (code: string, extra: Record<string, string> = {}) => ({
    grant_type: 'authorization_code',
    code,
    redirect_uri: DEMO_CLIENT.redirectUri,
    ...extra,
  });

  it('rejects a JSON body as Bitbucket does', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const res = await httpRequest(`${emulator.url}/site/oauth2/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: BASIC },
      body: JSON.stringify(exchange(code)),
    });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.text).toBe(
      '{"error_description":"Unsupported grant type: None","error":"invalid_grant"}',
    );
  });

  it('answers 401 unauthorized_client without client credentials', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const res = await postToken(emulator, exchange(code));
    expect(res.status).toBe(401);
    expect(res.text).toBe(
      '{"error_description":"Requests must be authenticated using OAuth client credentials","error":"unauthorized_client"}',
    );
  });

  it('answers 401 invalid_client for a wrong secret or an unknown client', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    for (const auth of [basic(DEMO_CLIENT.id, 'wrong'), basic('nobody', 'x')]) {
      const res = await postToken(emulator, exchange(code), {
        authorization: auth,
      });
      expect(res.status).toBe(401);
      expect(res.json()).toEqual({
        error: 'invalid_client',
        error_description: 'Invalid OAuth client credentials.',
      });
    }
    const inBody = await postToken(
      emulator,
      exchange(code, { client_id: DEMO_CLIENT.id, client_secret: 'wrong' }),
    );
    expect(inBody.status).toBe(401);
    expect(inBody.json().error).toBe('invalid_client');
  });

  it('accepts HTTP Basic only', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const res = await postToken(emulator, exchange(code), {
      authorization: BASIC,
    });
    expect(res.status).toBe(200);
  });

  it('accepts client_id and client_secret in the body only', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const res = await postToken(
      emulator,
      exchange(code, {
        client_id: DEMO_CLIENT.id,
        client_secret: DEMO_CLIENT.secret,
      }),
    );
    expect(res.status).toBe(200);
  });

  it('accepts both together when they agree, as passport sends them', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const res = await postToken(
      emulator,
      exchange(code, {
        client_id: DEMO_CLIENT.id,
        client_secret: DEMO_CLIENT.secret,
      }),
      { authorization: BASIC },
    );
    expect(res.status).toBe(200);

    const code2 = await getCode(emulator, DEMO_USERS.jane);
    const mismatch = await postToken(
      emulator,
      exchange(code2, { client_id: DEMO_CLIENT.id, client_secret: 'other' }),
      { authorization: BASIC },
    );
    expect(mismatch.status).toBe(401);
    expect(mismatch.json().error).toBe('invalid_client');
  });

  it('answers exactly the documented keys, with scope, 7200 s and state = grant type', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane, {
      scope: 'account email',
    });
    const res = await postToken(emulator, exchange(code), {
      authorization: BASIC,
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(Object.keys(body)).toEqual([
      'access_token',
      'scope',
      'expires_in',
      'token_type',
      'state',
      'refresh_token',
    ]);
    expect(body).toEqual({
      access_token: expect.stringMatching(/^[A-Za-z0-9_-]{40,}$/),
      scope: 'account email',
      expires_in: 7200,
      token_type: 'bearer',
      state: 'authorization_code',
      refresh_token: expect.stringMatching(/^[A-Za-z0-9_-]{20,}$/),
    });
  });

  it('grants all consumer permissions when no scope was requested', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const res = await postToken(emulator, exchange(code), {
      authorization: BASIC,
    });
    expect(res.json().scope).toBe(
      'account email team project pullrequest pullrequest:write snippet snippet:write issue issue:write',
    );
  });

  it('accepts a code only once', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    expect(
      (await postToken(emulator, exchange(code), { authorization: BASIC }))
        .status,
    ).toBe(200);
    const again = await postToken(emulator, exchange(code), {
      authorization: BASIC,
    });
    expect(again.status).toBe(400);
    expect(again.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'The authorization code has already been used.',
    });
  });

  it('rejects an unknown code', async () => {
    const res = await postToken(emulator, exchange('made-up'), {
      authorization: BASIC,
    });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'The authorization code is invalid.',
    });
  });

  it('rejects a redirect_uri that differs from the authorize request', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const res = await postToken(
      emulator,
      exchange(code, { redirect_uri: `${DEMO_CLIENT.callbackUrl}/other` }),
      { authorization: BASIC },
    );
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      error: 'invalid_grant',
      error_description:
        'redirect_uri does not match the one used in the authorization request.',
    });
    const { redirect_uri: _omitted, ...withoutRedirect } = exchange(code);
    const missing = await postToken(emulator, withoutRedirect, {
      authorization: BASIC,
    });
    expect(missing.json().error_description).toBe(
      'redirect_uri is required because the authorization request included one.',
    );
  });

  it('rejects a code issued to another consumer', async () => {
    await emulator.close();
    emulator = await startEmulator({
      seed: {
        consumers: [
          {
            key: 'a',
            secret: 'sa',
            callbackUrl: 'http://localhost:1/cb',
            permissions: ['account'],
          },
          {
            key: 'b',
            secret: 'sb',
            callbackUrl: 'http://localhost:1/cb',
            permissions: ['account'],
          },
        ],
        users: [
          {
            uuid: DEMO_USERS.jane,
            accountId: '1',
            nickname: 'j',
            displayName: 'J',
            emails: [],
          },
        ],
      },
    });
    const location = new URL(
      await emulator.authorize(
        `${emulator.url}/site/oauth2/authorize?client_id=a&response_type=code`,
        DEMO_USERS.jane,
      ),
    );
    const res = await postToken(
      emulator,
      {
        grant_type: 'authorization_code',
        code: location.searchParams.get('code')!,
      },
      { authorization: basic('b', 'sb') },
    );
    expect(res.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'The authorization code was issued to another client.',
    });
  });

  it('rejects a code older than 10 minutes', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const realNow = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(realNow + 10 * 60 * 1000 + 1);
    const res = await postToken(emulator, exchange(code), {
      authorization: BASIC,
    });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'The authorization code has expired.',
    });
  });

  it('accepts a code just under 10 minutes old', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const realNow = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(realNow + 9 * 60 * 1000);
    const res = await postToken(emulator, exchange(code), {
      authorization: BASIC,
    });
    expect(res.status).toBe(200);
  });

  it('rotates refresh tokens: the old one stops working', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const first = (
      await postToken(emulator, exchange(code), { authorization: BASIC })
    ).json();

    const refreshed = await postToken(
      emulator,
      { grant_type: 'refresh_token', refresh_token: first.refresh_token },
      { authorization: BASIC },
    );
    expect(refreshed.status).toBe(200);
    const second = refreshed.json();
    expect(second.state).toBe('refresh_token');
    expect(second.scope).toBe(
      'account email team project pullrequest pullrequest:write snippet snippet:write issue issue:write',
    );
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);

    const reused = await postToken(
      emulator,
      { grant_type: 'refresh_token', refresh_token: first.refresh_token },
      { authorization: BASIC },
    );
    expect(reused.status).toBe(400);
    expect(reused.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'The refresh token is invalid.',
    });

    const third = await postToken(
      emulator,
      { grant_type: 'refresh_token', refresh_token: second.refresh_token },
      { authorization: BASIC },
    );
    expect(third.status).toBe(200);
  });

  it('narrows the access token with scope on refresh, within the original grant', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane, {
      scope: 'account team',
    });
    const first = (
      await postToken(emulator, exchange(code), { authorization: BASIC })
    ).json();

    const narrowed = await postToken(
      emulator,
      {
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token,
        scope: 'team',
      },
      { authorization: BASIC },
    );
    expect(narrowed.json().scope).toBe('team');

    const wider = await postToken(
      emulator,
      {
        grant_type: 'refresh_token',
        refresh_token: narrowed.json().refresh_token,
        scope: 'account email',
      },
      { authorization: BASIC },
    );
    expect(wider.status).toBe(400);
    expect(wider.json()).toEqual({
      error: 'invalid_scope',
      error_description:
        'These requested scopes are beyond the original grant: email',
    });

    // The rotated refresh token still carries the original grant.
    const full = await postToken(
      emulator,
      {
        grant_type: 'refresh_token',
        refresh_token: narrowed.json().refresh_token,
      },
      { authorization: BASIC },
    );
    expect(full.json().scope).toBe('account team');
  });

  it('keeps the same refresh token when rotation is off', async () => {
    await emulator.close();
    emulator = await startEmulator({ rotateRefreshTokens: false });
    const code = await getCode(emulator, DEMO_USERS.jane);
    const first = (
      await postToken(emulator, exchange(code), { authorization: BASIC })
    ).json();
    for (let i = 0; i < 2; i++) {
      const res = await postToken(
        emulator,
        { grant_type: 'refresh_token', refresh_token: first.refresh_token },
        { authorization: BASIC },
      );
      expect(res.status).toBe(200);
      expect(res.json().refresh_token).toBe(first.refresh_token);
    }
  });

  it('rejects refresh tokens after revokeRefreshTokens()', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const first = (
      await postToken(emulator, exchange(code), { authorization: BASIC })
    ).json();
    emulator.revokeRefreshTokens();
    const res = await postToken(
      emulator,
      { grant_type: 'refresh_token', refresh_token: first.refresh_token },
      { authorization: BASIC },
    );
    expect(res.status).toBe(400);
    expect(res.json().error).toBe('invalid_grant');
  });

  it('lists every access and refresh token it issued, for secret scans', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const first = (
      await postToken(emulator, exchange(code), { authorization: BASIC })
    ).json();
    const second = (
      await postToken(
        emulator,
        { grant_type: 'refresh_token', refresh_token: first.refresh_token },
        { authorization: BASIC },
      )
    ).json();
    expect(emulator.issuedTokens().sort()).toEqual(
      [
        first.access_token,
        first.refresh_token,
        second.access_token,
        second.refresh_token,
      ].sort(),
    );
  });

  it('answers scopes instead of scope with legacyScopesField', async () => {
    await emulator.close();
    emulator = await startEmulator({ legacyScopesField: true });
    const code = await getCode(emulator, DEMO_USERS.jane, { scope: 'account' });
    const body = (
      await postToken(emulator, exchange(code), { authorization: BASIC })
    ).json();
    expect(Object.keys(body)).toEqual([
      'access_token',
      'scopes',
      'expires_in',
      'token_type',
      'state',
      'refresh_token',
    ]);
    expect(body.scopes).toBe('account');
  });

  it('honours accessTokenTtlSeconds in expires_in', async () => {
    await emulator.close();
    emulator = await startEmulator({ accessTokenTtlSeconds: 60 });
    const code = await getCode(emulator, DEMO_USERS.jane);
    const body = (
      await postToken(emulator, exchange(code), { authorization: BASIC })
    ).json();
    expect(body.expires_in).toBe(60);
  });

  it('answers unsupported_grant_type for other grants', async () => {
    const res = await postToken(
      emulator,
      { grant_type: 'password', username: 'u', password: 'p' },
      { authorization: BASIC },
    );
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      error: 'unsupported_grant_type',
      error_description: 'Unsupported grant type: password',
    });
  });

  it('records the grant type but never a code, token or secret', async () => {
    const code = await getCode(emulator, DEMO_USERS.jane);
    const tokens = (
      await postToken(
        emulator,
        exchange(code, {
          client_id: DEMO_CLIENT.id,
          client_secret: DEMO_CLIENT.secret,
        }),
        { authorization: BASIC },
      )
    ).json();
    await postToken(
      emulator,
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
      { authorization: BASIC },
    );
    await httpRequest(
      `${emulator.url}/2.0/user?access_token=${tokens.access_token}&code=${code}&client_secret=${DEMO_CLIENT.secret}`,
    );
    const calls = emulator.calls();
    expect(
      calls
        .filter(c => c.path === '/site/oauth2/access_token')
        .map(c => c.grantType),
    ).toEqual(['authorization_code', 'refresh_token']);
    const userCall = calls.find(c => c.path === '/2.0/user')!;
    expect(userCall.query).toBe(
      'access_token=REDACTED&code=REDACTED&client_secret=REDACTED',
    );
    const record = JSON.stringify(calls);
    for (const secret of [
      code,
      tokens.access_token,
      tokens.refresh_token,
      DEMO_CLIENT.secret,
    ]) {
      expect(record).not.toContain(secret);
    }
  });
});
