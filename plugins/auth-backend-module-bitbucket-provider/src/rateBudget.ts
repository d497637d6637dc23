import { LoggerService } from '@backstage/backend-plugin-api';

/** Bitbucket's budget: 1,000 REST calls per rolling hour per OAuth consumer. */
export const HOURLY_BUDGET = 1000;
const HOUR_MS = 60 * 60 * 1000;
const WARN_AT = 0.8;
const WARN_EVERY_MS = 60 * 1000;

/**
 * Counts this backend's REST calls to Bitbucket for one OAuth consumer and
 * warns when the hourly budget gets close: from Bitbucket's `X-RateLimit-*`
 * headers when it sends them, from a 429, or from the local count.
 */
export class RateBudget {
  readonly #logger?: LoggerService;
  readonly #clientId: string;
  #calls: number[] = [];
  #lastWarning = 0;

  constructor(clientId: string, logger?: LoggerService) {
    this.#clientId = clientId;
    this.#logger = logger;
  }

  /** Calls made in the last hour by this backend. */
  get callsLastHour(): number {
    this.#prune(Date.now());
    return this.#calls.length;
  }

  /** Records one REST call and its answer's status and headers. */
  record(
    status: number,
    headers?: { header(name: string): string | undefined },
  ): void {
    const now = Date.now();
    this.#calls.push(now);
    this.#prune(now);
    const limit = Number(headers?.header('x-ratelimit-limit'));
    const remaining = Number(headers?.header('x-ratelimit-remaining'));
    if (status === 429) {
      this.#warn(
        now,
        `Bitbucket rate limit reached for OAuth consumer ${
          this.#clientId
        } (HTTP 429); ${
          this.#calls.length
        } REST calls in the last hour from this backend. Raise profileCacheTtl, or use a separate consumer per portal.`,
      );
    } else if (
      Number.isFinite(limit) &&
      Number.isFinite(remaining) &&
      headers?.header('x-ratelimit-remaining') !== undefined &&
      remaining <= limit * (1 - WARN_AT)
    ) {
      this.#warn(
        now,
        `Bitbucket rate budget of OAuth consumer ${
          this.#clientId
        } is close: ${remaining} of ${limit} calls left this hour (X-RateLimit-Remaining).`,
      );
    } else if (this.#calls.length >= HOURLY_BUDGET * WARN_AT) {
      this.#warn(
        now,
        `Bitbucket rate budget of OAuth consumer ${this.#clientId} is close: ${
          this.#calls.length
        } REST calls in the last hour from this backend, of ${HOURLY_BUDGET} Bitbucket allows per consumer. Raise profileCacheTtl to make fewer calls per refresh.`,
      );
    }
  }

  #prune(now: number) {
    let i = 0;
    while (i < this.#calls.length && this.#calls[i] <= now - HOUR_MS) i++;
    if (i) this.#calls.splice(0, i);
  }

  #warn(now: number, message: string) {
    if (now - this.#lastWarning < WARN_EVERY_MS) return;
    this.#lastWarning = now;
    this.#logger?.warn(message);
  }
}
