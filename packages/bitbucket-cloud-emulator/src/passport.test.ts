import { Strategy as OAuth2Strategy } from 'passport-oauth2';
import { BitbucketCloudEmulator, startEmulator } from './server';
import { basic, DEMO_CLIENT, DEMO_USERS } from './test-helpers';

type Outcome =
  | { kind: 'redirect'; url: string }
  | { kind: 'success'; user: any; info: any }
  | { kind: 'fail'; challenge: any; status?: number }
  | { kind: 'error'; error: any };

/** Runs one `authenticate()` step of a strategy, as passport's middleware would. */
function runStrategy(
  strategy: OAuth2Strategy,
  req: Record<string, unknown>,
  options: Record<string, unknown> = {},
): Promise<Outcome> {
  return new Promise(resolve => {
    const step = Object.create(strategy);
    step.redirect = (url: string) => resolve({ kind: 'redirect', url });
    step.success = (user: any, info: any) =>
      resolve({ kind: 'success', user, info });
    step.fail = (challenge: any, status?: number) =>
      resolve({ kind: 'fail', challenge, status });
    step.error = (error: any) => resolve({ kind: 'error', error });
    step.authenticate(req, options);
  });
}

function oauthGet(
  strategy: OAuth2Strategy,
  url: string,
  accessToken: string,
): Promise<{ status: number; body: string }> {
  return new Promise(resolve => {
    (strategy as any)._oauth2.get(
      url,
      accessToken,
      (err: any, body: string) => {
        resolve(
          err
            ? { status: err.statusCode, body: err.data }
            : { status: 200, body },
        );
      },
    );
  });
}

describe('a real passport-oauth2 client', () => {
  let emulator: BitbucketCloudEmulator;
  let strategy: OAuth2Strategy;

  beforeEach(async () => {
    emulator = await startEmulator();
    strategy = new OAuth2Strategy(
      {
        authorizationURL: `${emulator.url}/site/oauth2/authorize`,
        tokenURL: `${emulator.url}/site/oauth2/access_token`,
        clientID: DEMO_CLIENT.id,
        clientSecret: DEMO_CLIENT.secret,
        callbackURL: DEMO_CLIENT.redirectUri,
        skipUserProfile: true,
        // What passport-bitbucket-oauth2 (and so Backstage) adds: Basic on top of the body credentials.
        customHeaders: {
          Authorization: basic(DEMO_CLIENT.id, DEMO_CLIENT.secret),
        },
      },
      (
        accessToken: string,
        refreshToken: string,
        params: any,
        _profile: any,
        done: (err: any, user?: any) => void,
      ) => done(null, { accessToken, refreshToken, params }),
    );
  });
  afterEach(() => emulator.close());

  it('signs in: redirect, consent, code exchange, then GET /2.0/user with the token', async () => {
    const start = await runStrategy(
      strategy,
      { query: {}, headers: {} },
      { scope: ['account', 'email'], state: 'opaque-state' },
    );
    expect(start.kind).toBe('redirect');
    const authorizeUrl = (start as { url: string }).url;
    const sent = new URL(authorizeUrl);
    expect(`${sent.origin}${sent.pathname}`).toBe(
      `${emulator.url}/site/oauth2/authorize`,
    );
    expect(Object.fromEntries(sent.searchParams)).toEqual({
      response_type: 'code',
      redirect_uri: DEMO_CLIENT.redirectUri,
      scope: 'account email',
      state: 'opaque-state',
      client_id: DEMO_CLIENT.id,
    });

    const callback = new URL(
      await emulator.authorize(authorizeUrl, DEMO_USERS.jane),
    );
    expect(`${callback.origin}${callback.pathname}`).toBe(
      DEMO_CLIENT.redirectUri,
    );
    expect(callback.searchParams.get('state')).toBe('opaque-state');

    const done = await runStrategy(strategy, {
      query: Object.fromEntries(callback.searchParams),
      headers: {},
    });
    expect(done.kind).toBe('success');
    const { user } = done as { user: any };
    expect(user.accessToken).toEqual(expect.any(String));
    expect(user.refreshToken).toEqual(expect.any(String));
    // node-oauth moves refresh_token out of params into its own argument.
    expect(user.params).toEqual({
      access_token: user.accessToken,
      scope: 'account email',
      expires_in: 7200,
      token_type: 'bearer',
      state: 'authorization_code',
    });

    // node-oauth puts the token in the query unless told to use the header;
    // since CHANGE-3052 Bitbucket only honours the header.
    const oauth2 = (strategy as any)._oauth2;
    const viaQuery = await oauthGet(
      strategy,
      `${emulator.apiBaseUrl}/user`,
      user.accessToken,
    );
    expect(viaQuery.status).toBe(401);
    oauth2.useAuthorizationHeaderforGET(true);
    const viaHeader = await oauthGet(
      strategy,
      `${emulator.apiBaseUrl}/user`,
      user.accessToken,
    );
    expect(viaHeader.status).toBe(200);
    expect(JSON.parse(viaHeader.body)).toMatchObject({
      uuid: DEMO_USERS.jane,
      display_name: 'Jane Doe',
    });

    const tokenCall = emulator
      .calls()
      .find(c => c.path === '/site/oauth2/access_token');
    expect(tokenCall).toMatchObject({
      method: 'POST',
      status: 200,
      grantType: 'authorization_code',
    });
  });

  it('turns a cancelled consent into a passport failure', async () => {
    const start = await runStrategy(
      strategy,
      { query: {}, headers: {} },
      { state: 's' },
    );
    const callback = new URL(
      await emulator.authorize(
        (start as { url: string }).url,
        DEMO_USERS.jane,
        'cancel',
      ),
    );
    const outcome = await runStrategy(strategy, {
      query: Object.fromEntries(callback.searchParams),
      headers: {},
    });
    expect(outcome).toEqual({
      kind: 'fail',
      challenge: { message: 'The user denied access to the application.' },
      status: undefined,
    });
  });

  it('surfaces token endpoint errors as a TokenError', async () => {
    const start = await runStrategy(
      strategy,
      { query: {}, headers: {} },
      { state: 's' },
    );
    const callback = new URL(
      await emulator.authorize((start as { url: string }).url, DEMO_USERS.jane),
    );
    const query = Object.fromEntries(callback.searchParams);
    expect((await runStrategy(strategy, { query, headers: {} })).kind).toBe(
      'success',
    );
    const reused = await runStrategy(strategy, { query, headers: {} });
    expect(reused.kind).toBe('error');
    const { error } = reused as { error: any };
    expect(error.name).toBe('TokenError');
    expect(error.code).toBe('invalid_grant');
    expect(error.message).toBe('The authorization code has already been used.');
  });
});
