import type { ProviderSettings } from './config';
import { canonicalUuid } from './contract';
import {
  forWorkspace,
  invalidAnswer,
  membersFailure,
  permissionsRefused,
  readJson,
  shrunkenAnswer,
  transportFailure,
  WorkspaceListingError,
} from './errors';
import { Answer, call } from './http';
import type { ClientCredentialsToken } from './token';
import type {
  BitbucketCloudMember,
  BitbucketCloudWorkspace,
} from './transformers';

type Settings = Pick<
  ProviderSettings,
  'path' | 'credentialsPath' | 'apiBaseUrl' | 'requestTimeoutMs'
>;

/** Bitbucket's largest page size: fewer calls against the hourly budget. */
const PAGELEN = 100;
/** 100 000 members: a `next` chain longer than that is a fault, not a workspace. */
const MAX_PAGES = 1000;

const BRACED_UUID =
  /^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$/i;

/** A member as one workspace lists it. */
export type ListedMember = Omit<BitbucketCloudMember, 'workspaces'>;

/**
 * One workspace and its members (owners and members), as one run of
 * Bitbucket's listings found them.
 */
export interface WorkspaceMembers {
  workspace: BitbucketCloudWorkspace;
  /** Owners and members; collaborators are not among them. */
  members: ListedMember[];
  /** ISO-8601 UTC time the listing started. */
  listedAt: string;
  /** How many collaborators were left out. */
  collaborators: number;
}

type Resource = 'members' | 'permissions';

/**
 * The REST calls of the provider, with the consumer's token:
 * `GET /2.0/workspaces/{workspace}/members`
 * (https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/#api-workspaces-workspace-members-get)
 * for each account's profile, and
 * `GET /2.0/workspaces/{workspace}/permissions`
 * (https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/#api-workspaces-workspace-permissions-get)
 * for each account's `permission`: the members listing names collaborators
 * (guests with access to some repositories) like anyone else, and only the
 * permissions listing tells them apart. Every page of both; a listing that
 * ends short of its `size`, skips a page or holds an entry without a uuid is
 * refused whole.
 */
export class BitbucketCloudOrgClient {
  readonly #settings: Settings;
  readonly #token: ClientCredentialsToken;
  readonly #now: () => number;
  #calls = 0;

  constructor(
    settings: Settings,
    token: ClientCredentialsToken,
    now: () => number = Date.now,
  ) {
    this.#settings = settings;
    this.#token = token;
    this.#now = now;
  }

  /** How many REST calls were made, for the run's log line. */
  get calls(): number {
    return this.#calls;
  }

  /**
   * The owners and members of `workspace` (a slug or a braced uuid).
   * Throws a {@link WorkspaceListingError} for an answer about this
   * workspace that is not applied, any other error for a failure of the
   * whole run (token, network, rate limit).
   */
  async workspaceMembers(workspace: string): Promise<WorkspaceMembers> {
    const listedAt = new Date(this.#now()).toISOString();
    const listed = await this.#listAll(workspace, 'members');
    const permissions = await this.#listAll(workspace, 'permissions');
    const roles = new Map<string, unknown>();
    for (const entry of permissions.values) {
      roles.set(
        canonicalUuid((entry as any).user.uuid)!,
        (entry as any).permission,
      );
    }
    let found: BitbucketCloudWorkspace | undefined;
    const members: ListedMember[] = [];
    let collaborators = 0;
    for (const value of listed.values) {
      found ??= parseWorkspace(value);
      const member = parseMember(value);
      const role = roles.get(canonicalUuid(member.uuid)!);
      if (role === 'owner' || role === 'member') members.push(member);
      // a collaborator, or someone who joined between the two listings
      // (the next run lists them): not a member for now
      else collaborators += 1;
    }
    if (!found) {
      throw new WorkspaceListingError(
        invalidAnswer(
          this.#settings,
          `GET /2.0/workspaces/${workspace}/members`,
          'apiBaseUrl',
          'memberships without their workspace (uuid and slug)',
        ).message,
      );
    }
    return { workspace: found, members, listedAt, collaborators };
  }

  /** Every entry of every page of one listing, checked whole. */
  async #listAll(
    workspace: string,
    resource: Resource,
  ): Promise<{ values: unknown[] }> {
    const { apiBaseUrl } = this.#settings;
    const endpoint = `GET /2.0/workspaces/${workspace}/${resource}`;
    let url:
      | string
      | undefined = `${apiBaseUrl}/workspaces/${encodeURIComponent(
      workspace,
    )}/${resource}?pagelen=${PAGELEN}`;
    const seen = new Set<string>();
    const values: unknown[] = [];
    let size: number | undefined;
    let pageNumber = 0;

    while (url) {
      if (seen.has(url) || seen.size >= MAX_PAGES) {
        throw forWorkspace(
          invalidAnswer(
            this.#settings,
            endpoint,
            'apiBaseUrl',
            `a 'next' link that loops or runs past ${MAX_PAGES} pages`,
          ),
        );
      }
      seen.add(url);
      const page = await this.#getPage(url, workspace, endpoint, resource);
      pageNumber += 1;
      if (page.page !== undefined && page.page !== pageNumber) {
        throw shrunkenAnswer(
          this.#settings,
          endpoint,
          `page ${page.page} where page ${pageNumber} was due (a page missing)`,
        );
      }
      if (page.size !== undefined) {
        if (size !== undefined && page.size !== size) {
          throw shrunkenAnswer(
            this.#settings,
            endpoint,
            `a 'size' of ${page.size} on page ${pageNumber} after ${size} on page 1`,
          );
        }
        size = page.size;
      }
      for (const value of page.values) {
        const uuid = text((value as any)?.user?.uuid);
        if (!uuid || !BRACED_UUID.test(uuid)) {
          throw shrunkenAnswer(
            this.#settings,
            endpoint,
            `an entry without a valid account uuid (${
              text((value as any)?.user?.display_name) ?? 'no display name'
            }, on page ${pageNumber})`,
          );
        }
        values.push(value);
      }
      url = page.next;
      // the token goes to the REST API only, never to where a link points
      if (url !== undefined && !url.startsWith(`${apiBaseUrl}/`)) {
        throw forWorkspace(
          invalidAnswer(
            this.#settings,
            endpoint,
            'apiBaseUrl',
            `a 'next' link outside ${apiBaseUrl} (${url.slice(0, 100)})`,
          ),
        );
      }
    }
    if (values.length === 0) {
      throw forWorkspace(
        invalidAnswer(
          this.#settings,
          endpoint,
          'apiBaseUrl',
          'no members at all, though a workspace always has its owner; nothing is changed on such an answer',
        ),
      );
    }
    if (size !== undefined && values.length !== size) {
      throw shrunkenAnswer(
        this.#settings,
        endpoint,
        `${values.length} entries where its 'size' announces ${size} (the listing ended early)`,
      );
    }
    return { values };
  }

  async #getPage(
    url: string,
    workspace: string,
    endpoint: string,
    resource: Resource,
  ): Promise<{
    values: unknown[];
    next?: string;
    page?: number;
    size?: number;
  }> {
    let answer = await this.#get(url, endpoint);
    if (answer.status === 401) {
      // expired or revoked early: one new token, one more try
      this.#token.invalidate();
      answer = await this.#get(url, endpoint);
    }
    if (answer.status < 200 || answer.status >= 300) {
      if (answer.status === 403) {
        // the consumer's permissions may change: the next run asks anew
        this.#token.invalidate();
      }
      if (
        resource === 'permissions' &&
        answer.status === 403 &&
        !/"required"/.test(answer.text)
      ) {
        throw permissionsRefused(this.#settings, workspace, endpoint, answer);
      }
      const failure = membersFailure(
        this.#settings,
        workspace,
        endpoint,
        answer,
      );
      // a 401 after a new token, the rate limit, a missing scope: the
      // consumer's failure, not the workspace's
      throw answer.status === 401 ||
        answer.status === 429 ||
        (answer.status === 403 && /"required"/.test(answer.text))
        ? failure
        : forWorkspace(failure);
    }
    let json: {
      values?: unknown;
      next?: unknown;
      page?: unknown;
      size?: unknown;
    };
    try {
      json = readJson(this.#settings, endpoint, 'apiBaseUrl', answer);
    } catch (error) {
      throw forWorkspace(error as Error);
    }
    if (!Array.isArray(json?.values)) {
      throw forWorkspace(
        invalidAnswer(
          this.#settings,
          endpoint,
          'apiBaseUrl',
          "a page without 'values'",
        ),
      );
    }
    return {
      values: json.values,
      next: typeof json.next === 'string' ? json.next : undefined,
      page: typeof json.page === 'number' ? json.page : undefined,
      size: typeof json.size === 'number' ? json.size : undefined,
    };
  }

  async #get(url: string, endpoint: string): Promise<Answer> {
    const token = await this.#token.get();
    this.#calls += 1;
    try {
      return await call(url, {
        method: 'GET',
        headers: {
          Authorization: `Bearer ${token}`,
          Accept: 'application/json',
        },
        timeoutMs: this.#settings.requestTimeoutMs,
      });
    } catch (error) {
      throw transportFailure(
        this.#settings,
        endpoint,
        url,
        'apiBaseUrl',
        error,
      );
    }
  }
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function href(links: any, name: string): string | undefined {
  return text(links?.[name]?.href);
}

function parseWorkspace(value: any): BitbucketCloudWorkspace | undefined {
  const w = value?.workspace;
  const uuid = text(w?.uuid);
  const slug = text(w?.slug);
  if (!uuid || !slug) return undefined;
  const workspace: BitbucketCloudWorkspace = { uuid, slug };
  const name = text(w.name);
  if (name) workspace.name = name;
  const avatarUrl = href(w.links, 'avatar');
  if (avatarUrl) workspace.avatarUrl = avatarUrl;
  return workspace;
}

/** The member of an entry whose uuid was checked. */
function parseMember(value: any): ListedMember {
  const user = value.user;
  const member: ListedMember = { uuid: user.uuid };
  const fields: Array<[keyof ListedMember, string | undefined]> = [
    ['accountId', text(user.account_id)],
    ['username', text(user.username)],
    ['nickname', text(user.nickname)],
    ['displayName', text(user.display_name)],
    ['avatarUrl', href(user.links, 'avatar')],
  ];
  for (const [key, v] of fields) {
    if (v !== undefined) member[key] = v;
  }
  return member;
}
