import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { BitbucketCloudEmulator } from '@internal/bitbucket-cloud-emulator';

/** The app origin the backends allow; the popup's web message targets it. */
export const APP_ORIGIN = 'http://127.0.0.1:3000';
const PROVIDER_PATH = '/api/auth/bitbucket';
const REQUEST_TIMEOUT_MS = 30_000;

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Request written to response fully read, ms (performance.now clock). */
  startedAt: number;
  endedAt: number;
}

/** A request's timing on the emulator's clock (`performance.timeOrigin + now`). */
export interface Timed {
  ms: number;
  startedAt: number;
  endedAt: number;
  /** A sign-in's steps, ms: /start, and the consent at the emulator (both pages). */
  steps?: { start: number; consent: number };
}

/** Sign-ins completed, by backend URL and environment (see {@link signInsCompleted}). */
const completed = new Map<string, number>();

/**
 * Sign-ins that completed at the backend of `backendUrl` in environment
 * `env`, by every browser of this process: each left a session that the
 * backend keeps for its refreshes (when the environment keeps sessions).
 */
export function signInsCompleted(backendUrl: string, env: string): number {
  return completed.get(`${new URL(backendUrl).origin} ${env}`) ?? 0;
}

function absolute(now: number): number {
  return performance.timeOrigin + now;
}

/** What a page load's `/refresh` got: a session, or a signed-out tab. */
export type RefreshOutcome =
  | { ok: true; timed: Timed }
  | { ok: false; status: number; message: string };

/**
 * One browser: a cookie jar and keep-alive connections to one backend
 * (`tabs` of them: a burst of tabs shares the jar). Cookie paths are
 * ignored: every cookie the backend sets is under /api/auth/bitbucket, where
 * every request goes. Expiry follows `clock` (the session model's simulated
 * time).
 */
export class Browser {
  readonly #backend: URL;
  readonly #emulator: BitbucketCloudEmulator;
  readonly #agent: http.Agent;
  readonly #cookies = new Map<string, { value: string; expiresAt: number }>();
  readonly #clock: () => number;

  constructor(
    backendUrl: string,
    emulator: BitbucketCloudEmulator,
    options: { tabs?: number; clock?: () => number } = {},
  ) {
    this.#backend = new URL(backendUrl);
    this.#emulator = emulator;
    this.#agent = new http.Agent({
      keepAlive: true,
      maxSockets: options.tabs ?? 1,
    });
    this.#clock = options.clock ?? Date.now;
  }

  /** Whether the jar holds a refresh-token cookie (a session). */
  hasSession(): boolean {
    return [...this.#liveCookies()].some(([name]) =>
      name.endsWith('-refresh-token'),
    );
  }

  *#liveCookies(): Iterable<[string, string]> {
    const now = this.#clock();
    for (const [name, cookie] of this.#cookies) {
      if (cookie.expiresAt > now) yield [name, cookie.value];
    }
  }

  close() {
    this.#agent.destroy();
  }

  /**
   * A GET; like a browser, sent again once when a kept-alive connection
   * turns out to have been closed by the server just as it was reused (the
   * request never reached it).
   */
  async #get(
    path: string,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    try {
      return await this.#getOnce(path, headers);
    } catch (error) {
      if ((error as { reusedSocket?: boolean }).reusedSocket) {
        return this.#getOnce(path, headers);
      }
      throw error;
    }
  }

  #getOnce(path: string, headers: Record<string, string>): Promise<Response> {
    const cookie = [...this.#liveCookies()]
      .map(([k, v]) => `${k}=${v}`)
      .join('; ');
    return new Promise((resolve, reject) => {
      const startedAt = performance.now();
      const req = http.request(
        {
          host: this.#backend.hostname,
          port: this.#backend.port,
          path,
          method: 'GET',
          agent: this.#agent,
          headers: cookie ? { ...headers, cookie } : headers,
        },
        res => {
          const chunks: Buffer[] = [];
          res.on('data', chunk => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const endedAt = performance.now();
            this.#store(res.headers['set-cookie']);
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
              startedAt,
              endedAt,
            });
          });
        },
      );
      // a backend that never answers fails the run instead of hanging it
      req.setTimeout(REQUEST_TIMEOUT_MS, () =>
        req.destroy(
          new Error(`GET ${path.split('?')[0]} got no answer in 30 s`),
        ),
      );
      req.on('error', error =>
        reject(
          Object.assign(error, {
            reusedSocket:
              req.reusedSocket &&
              (error as NodeJS.ErrnoException).code === 'ECONNRESET',
          }),
        ),
      );
      req.end();
    });
  }

  #store(setCookie: string[] | undefined) {
    const now = this.#clock();
    for (const line of setCookie ?? []) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expiresAt = Infinity; // a session cookie: the browser stays open
      for (const attribute of attributes) {
        const [k, v = ''] = attribute.split('=').map(part => part.trim());
        if (k.toLowerCase() === 'max-age') {
          expiresAt = now + Number(v) * 1000;
          break; // Max-Age wins over Expires
        }
        if (k.toLowerCase() === 'expires') expiresAt = Date.parse(v);
      }
      if (expiresAt <= now || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, { value, expiresAt });
    }
  }

  /**
   * A full popup sign-in as `userUuid`: /start, Bitbucket's consent page
   * (the authorize URL is sent to the emulator whatever its host, as the
   * harness reroutes bitbucket.org for the upstream module), then
   * /handler/frame. Returns the timing of the /handler/frame request only.
   */
  async signIn(
    env: string,
    userUuid: string,
    scope = 'account',
    /** Time the user spends on the consent page before Grant, ms. */
    consentMs = 0,
  ): Promise<Timed> {
    const start = await this.#get(
      `${PROVIDER_PATH}/start?env=${env}&flow=popup&origin=${encodeURIComponent(
        APP_ORIGIN,
      )}&scope=${encodeURIComponent(scope)}`,
    );
    if (start.status !== 302 || !start.headers.location) {
      throw new Error(
        `/start answered ${start.status}: ${start.body.slice(0, 300)}`,
      );
    }
    const authorize = new URL(start.headers.location);
    const atEmulator = `${this.#emulator.url}${authorize.pathname}${
      authorize.search
    }`;
    const consentStarted = performance.now();
    const back = new URL(await this.#emulator.authorize(atEmulator, userUuid));
    const consentEnded = performance.now();
    if (consentMs > 0) await sleep(consentMs);
    const frame = await this.#get(`${back.pathname}${back.search}`);
    const message = readWebMessage(frame.body);
    if (frame.status !== 200 || message?.type !== 'authorization_response') {
      throw new Error(
        `/handler/frame answered ${frame.status}: ${JSON.stringify(
          message?.error ?? frame.body.slice(0, 300),
        )}`,
      );
    }
    if (!message.response?.backstageIdentity?.token) {
      throw new Error('/handler/frame signed in without a Backstage token');
    }
    const key = `${this.#backend.origin} ${env}`;
    completed.set(key, (completed.get(key) ?? 0) + 1);
    return {
      ms: frame.endedAt - frame.startedAt,
      startedAt: absolute(frame.startedAt),
      endedAt: absolute(frame.endedAt),
      steps: {
        start: start.endedAt - start.startedAt,
        consent: consentEnded - consentStarted,
      },
    };
  }

  /** GET /refresh as the app does it on page load; throws unless it gives a session. */
  async refresh(env: string, scope = 'account'): Promise<Timed> {
    const outcome = await this.tryRefresh(env, scope);
    if (!outcome.ok) {
      throw new Error(
        `/refresh answered ${outcome.status}: ${outcome.message}`,
      );
    }
    return outcome.timed;
  }

  /** GET /refresh as a tab does on page load: a session, or a signed-out tab. */
  async tryRefresh(env: string, scope = 'account'): Promise<RefreshOutcome> {
    const res = await this.#get(
      `${PROVIDER_PATH}/refresh?optional&env=${env}&scope=${encodeURIComponent(
        scope,
      )}`,
      { 'x-requested-with': 'XMLHttpRequest' },
    );
    let json: any;
    try {
      json = JSON.parse(res.body);
    } catch {
      json = undefined;
    }
    if (res.status !== 200 || !json?.backstageIdentity?.token) {
      return {
        ok: false,
        status: res.status,
        message: String(json?.error?.message ?? res.body.slice(0, 300)),
      };
    }
    return {
      ok: true,
      timed: {
        ms: res.endedAt - res.startedAt,
        startedAt: absolute(res.startedAt),
        endedAt: absolute(res.endedAt),
      },
    };
  }
}

/** The JSON a /handler/frame page posts to the app window. */
export function readWebMessage(html: string): any {
  const match = html.match(/decodeURIComponent\('(.+?)'\)/);
  if (!match) return undefined;
  return JSON.parse(decodeURIComponent(match[1]));
}
