import http from 'node:http';
import { performance } from 'node:perf_hooks';
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
}

function absolute(now: number): number {
  return performance.timeOrigin + now;
}

/**
 * One browser: a cookie jar and a keep-alive connection to one backend.
 * Cookie paths and expiry are ignored except deletion: every cookie the
 * backend sets is under /api/auth/bitbucket, where every request goes.
 */
export class Browser {
  readonly #backend: URL;
  readonly #emulator: BitbucketCloudEmulator;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  readonly #cookies = new Map<string, string>();

  constructor(backendUrl: string, emulator: BitbucketCloudEmulator) {
    this.#backend = new URL(backendUrl);
    this.#emulator = emulator;
  }

  close() {
    this.#agent.destroy();
  }

  #get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    const cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
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
      req.on('error', reject);
      req.end();
    });
  }

  #store(setCookie: string[] | undefined) {
    for (const line of setCookie ?? []) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some(a => {
        const [k, v] = a.split('=').map(s => s.trim().toLowerCase());
        return (
          (k === 'max-age' && Number(v) <= 0) ||
          (k === 'expires' && Date.parse(v) < Date.now())
        );
      });
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
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
    const back = new URL(await this.#emulator.authorize(atEmulator, userUuid));
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
    return {
      ms: frame.endedAt - frame.startedAt,
      startedAt: absolute(frame.startedAt),
      endedAt: absolute(frame.endedAt),
    };
  }

  /** GET /refresh as the app does it on page load. */
  async refresh(env: string, scope = 'account'): Promise<Timed> {
    const res = await this.#get(
      `${PROVIDER_PATH}/refresh?optional&env=${env}&scope=${encodeURIComponent(
        scope,
      )}`,
      { 'x-requested-with': 'XMLHttpRequest' },
    );
    if (res.status !== 200) {
      throw new Error(
        `/refresh answered ${res.status}: ${res.body.slice(0, 300)}`,
      );
    }
    const json = JSON.parse(res.body);
    if (!json.backstageIdentity?.token) {
      throw new Error(
        `/refresh answered without a Backstage token: ${res.body.slice(
          0,
          300,
        )}`,
      );
    }
    return {
      ms: res.endedAt - res.startedAt,
      startedAt: absolute(res.startedAt),
      endedAt: absolute(res.endedAt),
    };
  }
}

/** The JSON a /handler/frame page posts to the app window. */
export function readWebMessage(html: string): any {
  const match = html.match(/decodeURIComponent\('(.+?)'\)/);
  if (!match) return undefined;
  return JSON.parse(decodeURIComponent(match[1]));
}
