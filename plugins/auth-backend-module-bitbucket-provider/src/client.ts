import { invalidJsonError, restError, transportError } from './errors';
import {
  BitbucketEmail,
  BitbucketProfile,
  toBitbucketEmail,
  toBitbucketProfile,
} from './profile';

/** Bitbucket caps `pagelen` at 100; a bound on pages keeps a bad `next` from looping. */
const PAGELEN = 100;
const MAX_PAGES = 50;

/** Options of {@link BitbucketClient}. */
export interface BitbucketClientOptions {
  /** e.g. `https://api.bitbucket.org/2.0` (no trailing slash) */
  apiBaseUrl: string;
  timeoutMs: number;
}

/**
 * The Bitbucket Cloud REST calls of a sign-in. The access token goes only in
 * the `Authorization: Bearer` header (CHANGE-3052: Bitbucket accepts no
 * other place since May 2026).
 */
export class BitbucketClient {
  readonly #apiBaseUrl: string;
  readonly #origin: string;
  readonly #timeoutMs: number;

  constructor(options: BitbucketClientOptions) {
    this.#apiBaseUrl = options.apiBaseUrl.replace(/\/+$/, '');
    this.#origin = new URL(this.#apiBaseUrl).origin;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * The user and their email addresses, fetched in parallel: the two calls
   * are independent, so a sign-in waits one round trip for both.
   */
  async fetchProfile(accessToken: string): Promise<BitbucketProfile> {
    const [user, emails] = await Promise.all([
      this.getCurrentUser(accessToken),
      this.listEmails(accessToken),
    ]);
    return toBitbucketProfile(user, emails);
  }

  /**
   * GET /2.0/user (scope `account`).
   * https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/#api-user-get
   */
  async getCurrentUser(accessToken: string): Promise<unknown> {
    return this.#getJson(`${this.#apiBaseUrl}/user`, accessToken);
  }

  /**
   * GET /2.0/user/emails (scope `email`), every page. Bitbucket returns
   * confirmed and unconfirmed addresses alike.
   * https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/#api-user-emails-get
   */
  async listEmails(accessToken: string): Promise<BitbucketEmail[]> {
    const values = await this.#getAllPages(
      `${this.#apiBaseUrl}/user/emails?pagelen=${PAGELEN}`,
      accessToken,
    );
    return values
      .map(toBitbucketEmail)
      .filter((e): e is BitbucketEmail => Boolean(e));
  }

  async #getAllPages(
    firstUrl: string,
    accessToken: string,
  ): Promise<unknown[]> {
    const values: unknown[] = [];
    let url: string | undefined = firstUrl;
    for (let page = 0; url && page < MAX_PAGES; page++) {
      const body = (await this.#getJson(url, accessToken)) as Record<
        string,
        unknown
      >;
      if (Array.isArray(body?.values)) values.push(...body.values);
      url = this.#checkedNext(body?.next);
    }
    return values;
  }

  /**
   * Follows `next` only on the configured API host: the bearer token must
   * never be sent to another origin, whatever the answer says.
   */
  #checkedNext(next: unknown): string | undefined {
    if (typeof next !== 'string' || next === '') return undefined;
    try {
      const url = new URL(next, this.#apiBaseUrl);
      return url.origin === this.#origin ? url.toString() : undefined;
    } catch {
      return undefined;
    }
  }

  async #getJson(url: string, accessToken: string): Promise<unknown> {
    const endpoint = `GET ${new URL(url).pathname}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        headers: {
          Authorization: `Bearer ${accessToken}`,
          Accept: 'application/json',
        },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      text = await res.text();
    } catch (error) {
      throw transportError(endpoint, this.#origin, error, this.#timeoutMs);
    }
    if (!res.ok) {
      throw restError(endpoint, res.status, text);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw invalidJsonError(endpoint);
    }
  }
}
