import type { ProviderSettings } from './config';
import {
  invalidAnswer,
  readJson,
  tokenFailure,
  transportFailure,
} from './errors';
import { Answer, call } from './http';

type Settings = Pick<
  ProviderSettings,
  | 'path'
  | 'credentialsPath'
  | 'tokenUrl'
  | 'clientId'
  | 'clientSecret'
  | 'requestTimeoutMs'
>;

/** A token is renewed this long before it expires, at most half its lifetime. */
export const RENEW_BEFORE_EXPIRY_MS = 5 * 60 * 1000;
/** Assumed when Bitbucket's answer has no `expires_in` (it always sends 7200). */
const DEFAULT_LIFETIME_S = 3600;

/**
 * The OAuth consumer's own access token, from the client-credentials grant
 * (`POST <baseUrl>/site/oauth2/access_token`, `grant_type=client_credentials`,
 * the Key and Secret as HTTP Basic:
 * https://developer.atlassian.com/cloud/bitbucket/oauth-2/#client-credentials-grant--4-4-).
 * It acts as the consumer, never as a person. One token serves every call
 * until shortly before it expires; concurrent callers share one grant.
 */
export class ClientCredentialsToken {
  readonly #settings: Settings;
  readonly #now: () => number;
  #current?: { value: string; renewAt: number };
  #pending?: Promise<string>;
  #grants = 0;

  constructor(settings: Settings, now: () => number = Date.now) {
    this.#settings = settings;
    this.#now = now;
  }

  /** How many grants were made, for the run's log line. */
  get grants(): number {
    return this.#grants;
  }

  /** A valid access token: the cached one, or a new one. */
  async get(): Promise<string> {
    if (this.#current && this.#now() < this.#current.renewAt) {
      return this.#current.value;
    }
    this.#pending ??= this.#grant().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  /** Forgets the cached token, e.g. after Bitbucket rejected it or its scopes. */
  invalidate(): void {
    this.#current = undefined;
  }

  async #grant(): Promise<string> {
    const { tokenUrl, clientId, clientSecret, requestTimeoutMs } =
      this.#settings;
    const endpoint = `POST ${new URL(tokenUrl).pathname}`;
    this.#grants += 1;
    let answer: Answer;
    try {
      answer = await call(tokenUrl, {
        method: 'POST',
        headers: {
          Authorization: `Basic ${Buffer.from(
            `${clientId}:${clientSecret}`,
          ).toString('base64')}`,
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
        },
        body: 'grant_type=client_credentials',
        timeoutMs: requestTimeoutMs,
      });
    } catch (error) {
      throw transportFailure(
        this.#settings,
        endpoint,
        tokenUrl,
        'baseUrl',
        error,
      );
    }
    if (answer.status < 200 || answer.status >= 300) {
      throw tokenFailure(this.#settings, endpoint, answer);
    }
    const json: { access_token?: unknown; expires_in?: unknown } = readJson(
      this.#settings,
      endpoint,
      'baseUrl',
      answer,
    );
    if (typeof json?.access_token !== 'string' || !json.access_token) {
      throw invalidAnswer(
        this.#settings,
        endpoint,
        'baseUrl',
        'no access_token',
      );
    }
    const lifetimeMs =
      (typeof json.expires_in === 'number' && json.expires_in > 0
        ? json.expires_in
        : DEFAULT_LIFETIME_S) * 1000;
    this.#current = {
      value: json.access_token,
      renewAt:
        this.#now() +
        lifetimeMs -
        Math.min(RENEW_BEFORE_EXPIRY_MS, lifetimeMs / 2),
    };
    return json.access_token;
  }
}
