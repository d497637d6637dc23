import type { ProviderSettings } from './config';
import {
  invalidAnswer,
  membersFailure,
  readJson,
  transportFailure,
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

/** One workspace and every one of its members. */
export interface WorkspaceMembers {
  workspace: BitbucketCloudWorkspace;
  members: ListedMember[];
  /** Entries left out because they carry no account uuid, described for the log. */
  skipped: string[];
}

/**
 * The REST calls of the provider, with the consumer's token. Only
 * `GET /2.0/workspaces/{workspace}/members`
 * (https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/#api-workspaces-workspace-members-get),
 * every page: each `workspace_membership` names the account and the
 * workspace, so no other call is needed.
 */
export class BitbucketCloudOrgClient {
  readonly #settings: Settings;
  readonly #token: ClientCredentialsToken;
  #calls = 0;

  constructor(settings: Settings, token: ClientCredentialsToken) {
    this.#settings = settings;
    this.#token = token;
  }

  /** How many REST calls were made, for the run's log line. */
  get calls(): number {
    return this.#calls;
  }

  /** Every member of `workspace` (a slug or a braced uuid). */
  async workspaceMembers(workspace: string): Promise<WorkspaceMembers> {
    const { apiBaseUrl } = this.#settings;
    const endpoint = `GET /2.0/workspaces/${workspace}/members`;
    let url:
      | string
      | undefined = `${apiBaseUrl}/workspaces/${encodeURIComponent(
      workspace,
    )}/members?pagelen=${PAGELEN}`;
    const seen = new Set<string>();
    const members: ListedMember[] = [];
    const skipped: string[] = [];
    let found: BitbucketCloudWorkspace | undefined;

    while (url) {
      if (seen.has(url) || seen.size >= MAX_PAGES) {
        throw invalidAnswer(
          this.#settings,
          endpoint,
          'apiBaseUrl',
          `a 'next' link that loops or runs past ${MAX_PAGES} pages`,
        );
      }
      seen.add(url);
      const page = await this.#getPage(url, workspace, endpoint);
      for (const value of page.values) {
        found ??= parseWorkspace(value);
        const member = parseMember(value);
        if (typeof member === 'string') skipped.push(member);
        else members.push(member);
      }
      url = page.next;
      // the token goes to the REST API only, never to where a link points
      if (url !== undefined && !url.startsWith(`${apiBaseUrl}/`)) {
        throw invalidAnswer(
          this.#settings,
          endpoint,
          'apiBaseUrl',
          `a 'next' link outside ${apiBaseUrl} (${url.slice(0, 100)})`,
        );
      }
    }
    if (members.length + skipped.length === 0) {
      throw invalidAnswer(
        this.#settings,
        endpoint,
        'apiBaseUrl',
        'no members at all, though a workspace always has its owner; nothing is changed on such an answer',
      );
    }
    if (!found) {
      throw invalidAnswer(
        this.#settings,
        endpoint,
        'apiBaseUrl',
        'memberships without their workspace (uuid and slug)',
      );
    }
    return { workspace: found, members, skipped };
  }

  async #getPage(
    url: string,
    workspace: string,
    endpoint: string,
  ): Promise<{ values: unknown[]; next?: string }> {
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
      throw membersFailure(this.#settings, workspace, endpoint, answer);
    }
    const json: { values?: unknown; next?: unknown } = readJson(
      this.#settings,
      endpoint,
      'apiBaseUrl',
      answer,
    );
    if (!Array.isArray(json?.values)) {
      throw invalidAnswer(
        this.#settings,
        endpoint,
        'apiBaseUrl',
        "a page without 'values'",
      );
    }
    return {
      values: json.values,
      next: typeof json.next === 'string' ? json.next : undefined,
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

/** The member, or why it was left out. */
function parseMember(value: any): ListedMember | string {
  const user = value?.user;
  const uuid = text(user?.uuid);
  if (!uuid || !BRACED_UUID.test(uuid)) {
    return `an entry without a valid account uuid (${
      text(user?.display_name) ?? 'no display name'
    })`;
  }
  const member: ListedMember = { uuid };
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
