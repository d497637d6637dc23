import { AllowedWorkspace } from './config';
import { Deadline } from './deadline';
import {
  deadlineError,
  invalidJsonError,
  restError,
  transportError,
} from './errors';
import { HttpAnswer, httpRequest } from './http';
import {
  BitbucketEmail,
  BitbucketProfile,
  BitbucketWorkspace,
  toBitbucketEmail,
  toBitbucketProfile,
  toBitbucketWorkspace,
} from './profile';
import { RateBudget } from './rateBudget';
import { mergePermissions, WorkspacePermission } from './workspaces';

/** Bitbucket caps `pagelen` at 100; a bound on pages keeps a bad `next` from looping. */
const PAGELEN = 100;
const MAX_PAGES = 50;
/** A 429 is retried once, and only when Bitbucket asks to wait at most this long. */
const MAX_RETRY_WAIT_MS = 10_000;

/** Options of {@link BitbucketClient}. */
export interface BitbucketClientOptions {
  /** e.g. `https://api.bitbucket.org/2.0` (no trailing slash) */
  apiBaseUrl: string;
  timeoutMs: number;
  /** Counts the calls against the consumer's hourly budget. */
  budget?: RateBudget;
  /**
   * Fetch user, emails and workspaces one after the other instead of in
   * parallel. Only for measuring what parallel fetching buys.
   */
  sequential?: boolean;
}

/** What a profile fetch includes besides the user and emails. */
export interface ProfileFetchOptions {
  /**
   * Also `GET /2.0/user/workspaces` (all pages) and
   * `GET /2.0/user/workspaces/{workspace}/permission` for each entry.
   */
  allowed?: AllowedWorkspace[];
  /** The body of `GET /2.0/user` when the caller fetched it already. */
  user?: unknown;
  /** `GET /2.0/user/emails` when the caller started it already. */
  emails?: Promise<BitbucketEmail[]>;
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
  readonly #budget?: RateBudget;
  readonly #sequential: boolean;

  constructor(options: BitbucketClientOptions) {
    this.#apiBaseUrl = options.apiBaseUrl.replace(/\/+$/, '');
    this.#origin = new URL(this.#apiBaseUrl).origin;
    this.#timeoutMs = options.timeoutMs;
    this.#budget = options.budget;
    this.#sequential = options.sequential ?? false;
  }

  /**
   * The user, their email addresses and, with an allow-list, their
   * workspaces and their role in each allowed one. The calls are
   * independent and made in parallel, so a sign-in waits one round trip for
   * all of them.
   */
  async fetchProfile(
    accessToken: string,
    options: ProfileFetchOptions = {},
    deadline?: Deadline,
  ): Promise<BitbucketProfile> {
    const { allowed } = options;
    const tasks: Array<() => Promise<unknown>> = [
      () =>
        'user' in options
          ? Promise.resolve(options.user)
          : this.getCurrentUser(accessToken, deadline),
      () => options.emails ?? this.listEmails(accessToken, deadline),
    ];
    if (allowed) {
      tasks.push(() => this.listWorkspaces(accessToken, deadline));
      for (const entry of allowed) {
        tasks.push(() =>
          this.getWorkspacePermission(accessToken, entry, deadline),
        );
      }
    }
    const [user, emails, workspaces, ...answers] = await this.#run(tasks);
    const profile = toBitbucketProfile(user, emails as BitbucketEmail[]);
    if (allowed) {
      profile.workspaces = mergePermissions(
        workspaces as BitbucketWorkspace[],
        allowed,
        answers as WorkspacePermission[],
      );
    }
    return profile;
  }

  /**
   * The workspace check alone: the user's role in each allowed workspace,
   * merged into the workspaces known from the last full fetch. One call per
   * entry, in parallel.
   */
  async fetchMembership(
    accessToken: string,
    allowed: AllowedWorkspace[],
    known: BitbucketWorkspace[],
    deadline?: Deadline,
  ): Promise<BitbucketWorkspace[]> {
    const answers = (await this.#run(
      allowed.map(
        entry => () =>
          this.getWorkspacePermission(accessToken, entry, deadline),
      ),
    )) as WorkspacePermission[];
    return mergePermissions(known, allowed, answers);
  }

  async #run(tasks: Array<() => Promise<unknown>>): Promise<unknown[]> {
    if (!this.#sequential) return Promise.all(tasks.map(task => task()));
    const results: unknown[] = [];
    for (const task of tasks) results.push(await task());
    return results;
  }

  /**
   * GET /2.0/user (scope `account`).
   * https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/#api-user-get
   */
  async getCurrentUser(
    accessToken: string,
    deadline?: Deadline,
  ): Promise<unknown> {
    return (
      await this.#getJson(`${this.#apiBaseUrl}/user`, accessToken, deadline)
    ).body;
  }

  /**
   * GET /2.0/user/emails (scope `email`), every page. Bitbucket returns
   * confirmed and unconfirmed addresses alike.
   * https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/#api-user-emails-get
   */
  async listEmails(
    accessToken: string,
    deadline?: Deadline,
  ): Promise<BitbucketEmail[]> {
    const values = await this.#getAllPages(
      `${this.#apiBaseUrl}/user/emails?pagelen=${PAGELEN}`,
      accessToken,
      deadline,
    );
    return values
      .map(toBitbucketEmail)
      .filter((e): e is BitbucketEmail => Boolean(e));
  }

  /**
   * GET /2.0/user/workspaces (Workspace membership: Read), every page: the
   * replacement (CHANGE-3022) of the removed /2.0/workspaces and
   * /2.0/user/permissions/workspaces (CHANGE-2770).
   * https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/#api-user-workspaces-get
   */
  async listWorkspaces(
    accessToken: string,
    deadline?: Deadline,
  ): Promise<BitbucketWorkspace[]> {
    const values = await this.#getAllPages(
      `${this.#apiBaseUrl}/user/workspaces?pagelen=${PAGELEN}`,
      accessToken,
      deadline,
    );
    return values
      .map(toBitbucketWorkspace)
      .filter((w): w is BitbucketWorkspace => Boolean(w));
  }

  /**
   * GET /2.0/user/workspaces/{workspace}/permission: the caller's role in one
   * workspace, named by slug or by braced uuid; no role when they are not a
   * member (404 or 403).
   * https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/#api-user-workspaces-workspace-permission-get
   */
  async getWorkspacePermission(
    accessToken: string,
    entry: AllowedWorkspace,
    deadline?: Deadline,
  ): Promise<WorkspacePermission> {
    const id = entry.kind === 'slug' ? entry.slug : entry.uuid;
    const { body } = await this.#getJson(
      `${this.#apiBaseUrl}/user/workspaces/${encodeURIComponent(
        id,
      )}/permission`,
      accessToken,
      deadline,
      [403, 404],
    );
    const b = body as Record<string, any> | undefined;
    const str = (v: unknown) =>
      typeof v === 'string' && v !== '' ? v : undefined;
    return {
      role: str(b?.permission),
      workspace: b?.workspace
        ? { slug: str(b.workspace.slug), uuid: str(b.workspace.uuid) }
        : undefined,
    };
  }

  async #getAllPages(
    firstUrl: string,
    accessToken: string,
    deadline: Deadline | undefined,
  ): Promise<unknown[]> {
    const values: unknown[] = [];
    let url: string | undefined = firstUrl;
    for (let page = 0; url && page < MAX_PAGES; page++) {
      const body = (await this.#getJson(url, accessToken, deadline))
        .body as Record<string, unknown>;
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

  /**
   * One GET with a timeout (`requestTimeout`, or less when the sign-in's
   * deadline is nearer); a 429 is retried once after `Retry-After` when
   * that is short and ends before the deadline. Statuses in `absent`
   * answer `{ body: undefined }`.
   */
  async #getJson(
    url: string,
    accessToken: string,
    deadline: Deadline | undefined,
    absent: number[] = [],
  ): Promise<{ body: unknown }> {
    const endpoint = `GET ${new URL(url).pathname}`;
    for (let attempt = 0; ; attempt++) {
      if (deadline?.expired()) throw deadlineError(endpoint, deadline.totalMs);
      const timeoutMs =
        deadline?.callTimeout(this.#timeoutMs) ?? this.#timeoutMs;
      let res: HttpAnswer;
      try {
        res = await httpRequest(url, {
          headers: {
            Authorization: `Bearer ${accessToken}`,
            Accept: 'application/json',
          },
          timeoutMs,
        });
      } catch (error) {
        this.#budget?.record(0);
        throw transportError(
          endpoint,
          this.#origin,
          error,
          this.#timeoutMs,
          timeoutMs < this.#timeoutMs ? deadline : undefined,
        );
      }
      this.#budget?.record(res.status, res);
      if (res.status === 429 && attempt === 0) {
        const waitMs = retryAfterMs(res.header('retry-after'));
        const left = deadline?.remaining() ?? Infinity;
        if (waitMs <= MAX_RETRY_WAIT_MS && waitMs < left) {
          await new Promise(r => setTimeout(r, waitMs));
          continue;
        }
      }
      if (absent.includes(res.status)) return { body: undefined };
      if (!res.ok) {
        throw restError(endpoint, res.status, res.text);
      }
      try {
        return { body: JSON.parse(res.text) };
      } catch {
        throw invalidJsonError(endpoint);
      }
    }
  }
}

/** `Retry-After` as milliseconds (seconds or an HTTP date); 1 s when absent. */
export function retryAfterMs(header: string | undefined): number {
  if (!header) return 1000;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : 1000;
}
