import { BitbucketCloudEmulator, startEmulator } from './server';
import { basic, DEMO_CLIENT, getApi, postToken } from './test-helpers';

const BASIC = basic(DEMO_CLIENT.id, DEMO_CLIENT.secret);

describe('client-credentials grant', () => {
  let emulator: BitbucketCloudEmulator;
  beforeEach(async () => {
    emulator = await startEmulator();
  });
  afterEach(() => emulator.close());

  it("issues a token with the consumer's permissions and no refresh token", async () => {
    const res = await postToken(
      emulator,
      { grant_type: 'client_credentials' },
      { authorization: BASIC },
    );
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json()).toEqual({
      access_token: expect.stringMatching(/^[A-Za-z0-9_-]{64}$/),
      scope:
        'account email team project pullrequest pullrequest:write snippet snippet:write issue issue:write',
      expires_in: 7200,
      token_type: 'bearer',
      state: 'client_credentials',
    });
  });

  it('accepts the credentials in the body, and answers scopes with legacyScopesField', async () => {
    await emulator.close();
    emulator = await startEmulator({
      legacyScopesField: true,
      accessTokenTtlSeconds: 60,
    });
    const res = await postToken(emulator, {
      grant_type: 'client_credentials',
      client_id: DEMO_CLIENT.id,
      client_secret: DEMO_CLIENT.secret,
    });
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body.scopes).toBe(
      'account email team project pullrequest pullrequest:write snippet snippet:write issue issue:write',
    );
    expect(body.scope).toBeUndefined();
    expect(body.expires_in).toBe(60);
  });

  it('narrows the token to the requested scopes', async () => {
    const res = await postToken(
      emulator,
      { grant_type: 'client_credentials', scope: 'team' },
      { authorization: BASIC },
    );
    expect(res.json().scope).toBe('team');
  });

  it('answers invalid_scope for scopes beyond the consumer, and issues nothing', async () => {
    const res = await postToken(
      emulator,
      { grant_type: 'client_credentials', scope: 'team repository' },
      { authorization: BASIC },
    );
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      error: 'invalid_scope',
      error_description:
        "These requested scopes are beyond the OAuth client's own scopes: repository",
    });
  });

  it('authenticates the consumer first: a wrong secret gets invalid_client', async () => {
    const res = await postToken(
      emulator,
      { grant_type: 'client_credentials' },
      { authorization: basic(DEMO_CLIENT.id, 'wrong') },
    );
    expect(res.status).toBe(401);
    expect(res.json()).toEqual({
      error: 'invalid_client',
      error_description: 'Invalid OAuth client credentials.',
    });
  });

  it('gives a token that acts as no user: /2.0/user answers 401', async () => {
    const token = (
      await postToken(
        emulator,
        { grant_type: 'client_credentials' },
        { authorization: BASIC },
      )
    ).json().access_token;
    const res = await getApi(emulator, '/2.0/user', token);
    expect(res.status).toBe(401);
    expect(res.json()).toEqual({
      type: 'error',
      error: { message: 'Invalid access token.' },
    });
  });

  it('records the grant type, never the secret', async () => {
    await postToken(
      emulator,
      {
        grant_type: 'client_credentials',
        client_id: DEMO_CLIENT.id,
        client_secret: DEMO_CLIENT.secret,
      },
      {},
    );
    const [call] = emulator.calls();
    expect(call).toMatchObject({
      method: 'POST',
      path: '/site/oauth2/access_token',
      status: 200,
      grantType: 'client_credentials',
    });
    expect(JSON.stringify(emulator.calls())).not.toContain(DEMO_CLIENT.secret);
  });
});
