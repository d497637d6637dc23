import { LoggerService } from '@backstage/backend-plugin-api';
import { BitbucketProfile } from './profile';

const HOUR_MS = 60 * 60 * 1000;
/** Bounds the memory of the counts: the oldest account is forgotten first. */
const MAX_ACCOUNTS = 10_000;

interface AccountWindow {
  /** Sign-ins since `since`. */
  count: number;
  since: number;
  /** The profile of its last full sign-in, once the account is over the limit. */
  profile?: BitbucketProfile;
  fetchedAt?: number;
  fingerprint?: string;
}

/**
 * Keeps one Bitbucket account from spending the consumer's rate budget,
 * which every user of the portal shares (1,000 REST calls per hour): a
 * scripted account repeating sign-ins would otherwise cost the full profile
 * round each time. After `limit` sign-ins of an account within an hour,
 * sign-ins fetch `GET /2.0/user` first (while any account is over its
 * limit), and that account's reuse the profile of its last full sign-in
 * while it is younger than `profileCacheTtl`: one REST call per sign-in.
 * The kept profile keeps its fetch time, so that its roles are re-read
 * `profileCacheTtl` after they were read. Counted per backend process;
 * only sign-ins the workspace check admitted are counted (see
 * ProfileSource), so the switch to `GET /2.0/user` first, which costs
 * every sign-in of the process one more round trip for up to an hour, is
 * in the hands of admitted accounts only.
 */
export class AccountBudget {
  readonly #limit: number;
  readonly #logger?: LoggerService;
  readonly #accounts = new Map<string, AccountWindow>();
  /** Accounts over their limit, with the end of their window. */
  readonly #over = new Map<string, number>();

  constructor(limit: number, logger?: LoggerService) {
    this.#limit = limit;
    this.#logger = logger;
  }

  /**
   * Whether sign-ins should identify the account before fetching the rest
   * of the profile: true while an account is over its limit.
   */
  get identifyFirst(): boolean {
    if (this.#limit === 0) return false;
    const now = Date.now();
    for (const [key, until] of this.#over) {
      if (until <= now) this.#over.delete(key);
    }
    return this.#over.size > 0;
  }

  /**
   * The profile an account over its limit reuses, with when it was fetched,
   * when one was kept under the same workspace settings less than
   * `maxAgeMs` ago.
   */
  reusable(
    uuid: string,
    fingerprint: string,
    maxAgeMs: number,
  ): { profile: BitbucketProfile; fetchedAt: number } | undefined {
    const window = this.#window(uuid.toLowerCase(), Date.now());
    if (!window || window.count < this.#limit || !window.profile)
      return undefined;
    if (window.fingerprint !== fingerprint) return undefined;
    const fetchedAt = window.fetchedAt ?? 0;
    if (Date.now() - fetchedAt >= maxAgeMs) return undefined;
    return { profile: window.profile, fetchedAt };
  }

  /**
   * Counts a sign-in of the account; `fetched` is the profile when this
   * sign-in fetched it in full.
   */
  record(
    uuid: string,
    fetched: { profile: BitbucketProfile; fingerprint: string } | undefined,
  ): void {
    if (this.#limit === 0) return;
    const key = uuid.toLowerCase();
    const now = Date.now();
    let window = this.#window(key, now);
    if (!window) {
      window = { count: 0, since: now };
      if (this.#accounts.size >= MAX_ACCOUNTS) {
        this.#accounts.delete(this.#accounts.keys().next().value!);
      }
      this.#accounts.set(key, window);
    }
    window.count++;
    if (window.count < this.#limit) return;
    if (fetched) {
      window.profile = fetched.profile;
      window.fingerprint = fetched.fingerprint;
      window.fetchedAt = now;
    }
    if (window.count === this.#limit) {
      this.#over.set(key, window.since + HOUR_MS);
      this.#logger?.warn(
        `Bitbucket account ${uuid} signed in ${
          this.#limit
        } times within an hour: its next sign-ins this hour reuse its profile after GET /2.0/user instead of fetching it again, so that it cannot spend the consumer’s rate budget.`,
      );
    }
  }

  #window(key: string, now: number): AccountWindow | undefined {
    const window = this.#accounts.get(key);
    if (window && window.since + HOUR_MS <= now) {
      this.#accounts.delete(key);
      return undefined;
    }
    return window;
  }
}
