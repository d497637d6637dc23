import { BitbucketCloudEmulator, startEmulator } from './server';
import {
  authorizeUrl,
  DEMO_CLIENT,
  DEMO_USERS,
  httpRequest,
  TestResponse,
} from './test-helpers';

/**
 * Bitbucket remembers what a user granted a consumer: the permission screen
 * shows only the first time, or when the consumer asks for more. The
 * emulator's browser session (a cookie on the authorize path) says who is
 * signed in to Bitbucket.
 */
describe('remembered grants', () => {
  let emulator: BitbucketCloudEmulator;
  beforeEach(async () => {
    emulator = await startEmulator();
  });
  afterEach(() => emulator.close());

  /** GETs the consent page and posts Grant as `user`, with the browser's cookie. */
  async function grant(
    scope: string,
    user: string,
    cookie?: string,
  ): Promise<{ page: TestResponse; answer: TestResponse }> {
    const url = authorizeUrl(emulator, { scope, state: 's1' });
    const page = await httpRequest(url, {
      headers: cookie ? { cookie } : {},
    });
    expect(page.status).toBe(200);
    const answer = await httpRequest(`${emulator.url}/site/oauth2/authorize`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(cookie ? { cookie } : {}),
      },
      body: new URLSearchParams({
        client_id: DEMO_CLIENT.id,
        response_type: 'code',
        redirect_uri: DEMO_CLIENT.redirectUri,
        scope,
        state: 's1',
        account: user,
        decision: 'grant',
      }).toString(),
    });
    return { page, answer };
  }

  function sessionCookie(res: TestResponse): string {
    const set = res.headers['set-cookie'] ?? [];
    const cookie = set.find(c => c.startsWith('bitbucket_session='));
    if (!cookie) throw new Error(`no session cookie in ${JSON.stringify(set)}`);
    return cookie.split(';')[0];
  }

  it('a grant signs the browser in: an HttpOnly session cookie on the OAuth path', async () => {
    const { answer } = await grant('account email', DEMO_USERS.jane);
    expect(answer.status).toBe(302);
    const set = answer.headers['set-cookie'] ?? [];
    expect(set).toHaveLength(1);
    expect(set[0]).toMatch(
      /^bitbucket_session=[A-Za-z0-9_-]{32}; Path=\/site\/oauth2; HttpOnly; SameSite=Lax$/,
    );
  });

  it('asks again for scopes already granted: no page, straight back with a code', async () => {
    const { answer } = await grant('account email', DEMO_USERS.jane);
    const cookie = sessionCookie(answer);

    const again = await httpRequest(
      authorizeUrl(emulator, { scope: 'email account', state: 's2' }),
      { headers: { cookie } },
    );
    expect(again.status).toBe(302);
    const location = new URL(again.headers.location!);
    expect(`${location.origin}${location.pathname}`).toBe(
      DEMO_CLIENT.redirectUri,
    );
    expect(location.searchParams.get('state')).toBe('s2');
    const code = location.searchParams.get('code')!;
    const token = await httpRequest(
      `${emulator.url}/site/oauth2/access_token`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(
            `${DEMO_CLIENT.id}:${DEMO_CLIENT.secret}`,
          ).toString('base64')}`,
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: DEMO_CLIENT.redirectUri,
        }).toString(),
      },
    );
    expect(token.json().scope).toBe('email account');
    const user = await httpRequest(`${emulator.url}/2.0/user`, {
      headers: { authorization: `Bearer ${token.json().access_token}` },
    });
    expect(user.json().uuid).toBe(DEMO_USERS.jane);
  });

  it('asks for more: the page lists only the scopes not granted yet, with the account chosen', async () => {
    const { answer } = await grant('account email', DEMO_USERS.jane);
    const cookie = sessionCookie(answer);

    const { page, answer: wider } = await grant(
      'account email team',
      DEMO_USERS.jane,
      cookie,
    );
    expect(page.text).toContain(
      '<p><strong>backstage-demo</strong> is requesting additional access to your Bitbucket Cloud account. It will also be able to:</p>',
    );
    const listed = [
      ...page.text.matchAll(/<ul class="scopes">([\s\S]*?)<\/ul>/g),
    ].map(m => [...m[1].matchAll(/<code>([^<]+)<\/code>/g)].map(c => c[1]));
    expect(listed).toEqual([['team'], ['account', 'email']]);
    expect(page.text).toMatch(
      /<input type="radio" id="account-0" name="account" value="\{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15\}"[^>]* checked required>/,
    );
    expect(wider.status).toBe(302);

    // all three are remembered now
    const third = await httpRequest(
      authorizeUrl(emulator, { scope: 'team account' }),
      { headers: { cookie } },
    );
    expect(third.status).toBe(302);
    expect(new URL(third.headers.location!).searchParams.has('code')).toBe(
      true,
    );
  });

  it('another browser (no cookie) sees the whole page; another account only what it granted', async () => {
    const { answer } = await grant('account email', DEMO_USERS.jane);
    const cookie = sessionCookie(answer);

    const fresh = await httpRequest(
      authorizeUrl(emulator, { scope: 'account email' }),
    );
    expect(fresh.status).toBe(200);
    expect(fresh.text).toContain(
      '<p><strong>backstage-demo</strong> is requesting access to your Bitbucket Cloud account. It will be able to:</p>',
    );
    expect(fresh.text).not.toContain(' checked ');

    // Bob, in his own browser: his grants are his own
    const bob = sessionCookie((await grant('account', DEMO_USERS.bob)).answer);
    expect(bob).not.toBe(cookie);
    const asBob = await httpRequest(
      authorizeUrl(emulator, { scope: 'account email' }),
      { headers: { cookie: bob } },
    );
    expect(asBob.status).toBe(200);
    const listed = [
      ...asBob.text.matchAll(/<ul class="scopes">([\s\S]*?)<\/ul>/g),
    ].map(m => [...m[1].matchAll(/<code>([^<]+)<\/code>/g)].map(c => c[1]));
    expect(listed).toEqual([['email'], ['account']]);
  });

  it('a session cookie the emulator never issued is no session', async () => {
    const page = await httpRequest(
      authorizeUrl(emulator, { scope: 'account' }),
      { headers: { cookie: 'bitbucket_session=forged' } },
    );
    expect(page.status).toBe(200);
    expect(page.text).not.toContain(' checked ');
  });

  it('a scope beyond the consumer is refused even when the rest was granted', async () => {
    const { answer } = await grant('account email', DEMO_USERS.jane);
    const cookie = sessionCookie(answer);
    const res = await httpRequest(
      authorizeUrl(emulator, { scope: 'account email pipeline', state: 's3' }),
      { headers: { cookie } },
    );
    expect(res.status).toBe(302);
    const location = new URL(res.headers.location!);
    expect(location.searchParams.get('error')).toBe('invalid_scope');
    expect(location.searchParams.get('error_description')).toBe(
      "These requested scopes are beyond the OAuth client's own scopes: pipeline",
    );
    expect(location.searchParams.get('state')).toBe('s3');
  });
});
