import { readWebMessage } from '../../__testUtils__/backend';

const PROVIDER = '/api/auth/bitbucket';

/**
 * A browser for the scripts of `hardening/` (outside Jest): `fetch` with
 * manual redirects and one cookie jar. Cookies are host-only and a browser
 * sends them to every port of the host, as it does to every replica behind
 * one load balancer; paths are ignored (all routes live under the provider).
 */
export class Browser {
  readonly cookies = new Map<string, string>();

  async request(
    url: string,
    init: { method?: string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const cookie = [...this.cookies]
      .map(([name, value]) => `${name}=${value}`)
      .join('; ');
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: { ...(cookie && { cookie }), ...init.headers },
      signal: AbortSignal.timeout(30_000),
    });
    for (const setCookie of res.headers.getSetCookie()) {
      const [pair, ...attributes] = setCookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some(a =>
        /^\s*expires=Thu, 01 Jan 1970/i.test(a),
      );
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }
}

/**
 * The user on the emulator's consent page (see the emulator's README):
 * GET the authorize URL, POST its form as `uuid` choosing Grant. Returns
 * where Bitbucket redirects back to.
 */
export async function consent(
  authorizeUrl: string,
  uuid: string,
): Promise<URL> {
  const page = await fetch(authorizeUrl, { redirect: 'manual' });
  const html = await page.text();
  if (page.status !== 200) {
    throw new Error(`the consent page answered HTTP ${page.status}`);
  }
  const entities = (text: string) =>
    text
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&');
  const action = /<form method="post" action="([^"]*)">/.exec(html);
  if (!action) throw new Error('the consent page has no form');
  const form = new URLSearchParams(
    [
      ...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g),
    ].map(m => [entities(m[1]), entities(m[2])]),
  );
  form.set('account', uuid);
  form.set('decision', 'grant');
  const answer = await fetch(new URL(entities(action[1]), authorizeUrl), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  await answer.arrayBuffer();
  const location = answer.headers.get('location');
  if (!location) {
    throw new Error(`the consent form answered HTTP ${answer.status}`);
  }
  return new URL(location);
}

/** What a sign-in through {@link Browser} issued. */
export interface BrowserSignIn {
  message: any;
  code?: string;
  refreshToken?: string;
}

/**
 * /start on `startUrl` → consent as `uuid` → /handler/frame on `frameUrl`
 * (another replica, or the same backend).
 */
export async function browserSignIn(
  browser: Browser,
  options: {
    startUrl: string;
    frameUrl?: string;
    uuid: string;
    appOrigin: string;
  },
): Promise<BrowserSignIn> {
  const start = await browser.request(
    `${
      options.startUrl
    }${PROVIDER}/start?env=development&flow=popup&origin=${encodeURIComponent(
      options.appOrigin,
    )}&scope=account`,
  );
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (start.status !== 302 || !location) {
    throw new Error(`/start answered HTTP ${start.status}`);
  }
  const back = await consent(location, options.uuid);
  const frame = await browser.request(
    `${options.frameUrl ?? options.startUrl}${back.pathname}${back.search}`,
  );
  const message = readWebMessage(await frame.text());
  return {
    message,
    code: back.searchParams.get('code') ?? undefined,
    refreshToken: browser.cookie('bitbucket-refresh-token'),
  };
}

/** GET /refresh as the app does it. */
export async function browserRefresh(
  browser: Browser,
  backendUrl: string,
): Promise<{ status: number; body: any }> {
  const res = await browser.request(
    `${backendUrl}${PROVIDER}/refresh?optional&env=development&scope=account`,
    { headers: { 'x-requested-with': 'XMLHttpRequest' } },
  );
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

/** POST /logout as the app does it. */
export async function browserLogout(
  browser: Browser,
  backendUrl: string,
): Promise<number> {
  const res = await browser.request(
    `${backendUrl}${PROVIDER}/logout?env=development`,
    { method: 'POST', headers: { 'x-requested-with': 'XMLHttpRequest' } },
  );
  await res.arrayBuffer();
  return res.status;
}
