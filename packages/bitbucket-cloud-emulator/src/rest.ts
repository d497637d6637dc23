import { createHash } from 'node:crypto';
import { Exchange, sendJson } from './http';
import { SeedEmail, SeedUser, workspaceUuid } from './seed';
import { EmulatorState, Grant } from './state';

/** Prefix of the REST API. */
export const API_PREFIX = '/2.0';

/** Bitbucket caps `pagelen` at 100 [doc]. */
const MAX_PAGELEN = 100;

/** Options of the REST handlers. */
export interface RestOptions {
  /** Default page size of paginated endpoints. */
  pagelen: number;
}

/**
 * CHANGE-2770 removed these cross-workspace endpoints in 2026; they answer
 * 410 Gone with this body [obs].
 * https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-2770
 */
export const REMOVED_ENDPOINTS = [
  '/2.0/workspaces',
  '/2.0/user/permissions/workspaces',
  '/2.0/user/permissions/repositories',
  '/2.0/repositories',
];

/** The exact 410 body of the removed endpoints. */
export function removedEndpointBody() {
  const data = {
    announcement_url:
      'https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-2770',
  };
  return {
    type: 'error',
    error: {
      message: 'CHANGE-2770 - Functionality has been deprecated',
      detail: 'Please read the changelog entry for more details.',
      data: { ...data },
    },
    data: { ...data },
  };
}

/** Sends Bitbucket's error body: `{"type":"error","error":{"message","detail"?}}`. */
export function sendBitbucketError(
  ex: Exchange,
  status: number,
  message: string,
  detail?: unknown,
  headers: Record<string, string> = {},
): void {
  sendJson(
    ex,
    status,
    {
      type: 'error',
      error: detail === undefined ? { message } : { message, detail },
    },
    headers,
  );
}

interface Route {
  pattern: RegExp;
  scope: string;
  handle(ex: Exchange, user: SeedUser, match: RegExpExecArray): void;
}

/** Handles every request under `/2.0`. */
export function handleRest(
  ex: Exchange,
  state: EmulatorState,
  options: RestOptions,
): void {
  const path = ex.url.pathname.replace(/\/+$/, '') || '/';
  if (REMOVED_ENDPOINTS.includes(path)) {
    sendJson(ex, 410, removedEndpointBody());
    return;
  }

  const routes: Route[] = [
    // https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/#api-user-get
    {
      pattern: /^\/2\.0\/user$/,
      scope: 'account',
      handle: (e, u) => sendJson(e, 200, userBody(e, u)),
    },
    // https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/#api-user-emails-get
    {
      pattern: /^\/2\.0\/user\/emails$/,
      scope: 'email',
      handle: (e, u) =>
        paginate(
          e,
          options,
          u.emails.map(m => emailBody(e, m)),
        ),
    },
    // https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/#api-user-emails-email-get
    {
      pattern: /^\/2\.0\/user\/emails\/([^/]+)$/,
      scope: 'email',
      handle: (e, u, m) => {
        const wanted = safeDecode(m[1]).toLowerCase();
        const email = u.emails.find(x => x.email.toLowerCase() === wanted);
        if (email) {
          sendJson(e, 200, emailBody(e, email));
        } else {
          sendBitbucketError(e, 404, 'Email not found.');
        }
      },
    },
    // CHANGE-3022: https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-3022
    {
      pattern: /^\/2\.0\/user\/workspaces$/,
      scope: 'team',
      handle: (e, u) =>
        paginate(
          e,
          options,
          (u.workspaces ?? []).map(w => ({
            type: 'workspace_access',
            administrator: w.role === 'owner',
            workspace: {
              type: 'workspace_base',
              uuid: workspaceUuid(w),
              slug: w.slug,
              links: {
                self: {
                  href: `${e.origin}/2.0/workspaces/${encodeURIComponent(
                    w.slug,
                  )}`,
                },
              },
            },
          })),
        ),
    },
    {
      pattern: /^\/2\.0\/user\/workspaces\/([^/]+)\/permission$/,
      scope: 'team',
      handle: (e, u, m) => {
        const slug = safeDecode(m[1]);
        const membership = (u.workspaces ?? []).find(
          w =>
            w.slug === slug ||
            workspaceUuid(w).toLowerCase() === slug.toLowerCase(),
        );
        if (!membership) {
          sendBitbucketError(
            e,
            404,
            `You are not a member of the workspace "${slug}", or it does not exist.`,
          );
          return;
        }
        // a workspace_membership, as /2.0/workspaces/{ws}/members/{member} answers it
        sendJson(e, 200, {
          type: 'workspace_membership',
          permission: membership.role,
          user: {
            type: 'user',
            uuid: u.uuid,
            account_id: u.accountId,
            nickname: u.nickname,
            display_name: u.displayName,
          },
          workspace: {
            type: 'workspace',
            uuid: workspaceUuid(membership),
            slug: membership.slug,
            name: membership.name ?? membership.slug,
          },
        });
      },
    },
  ];

  for (const route of routes) {
    const match = route.pattern.exec(path);
    if (!match) {
      continue;
    }
    if (ex.req.method !== 'GET' && ex.req.method !== 'HEAD') {
      sendBitbucketError(
        ex,
        405,
        `Method ${ex.req.method} is not allowed here.`,
        undefined,
        {
          allow: 'GET',
        },
      );
      return;
    }
    const auth = authenticate(ex, state);
    if (!auth) {
      return;
    }
    if (!auth.grant.scopes.includes(route.scope)) {
      sendBitbucketError(
        ex,
        403,
        'Your credentials lack one or more required privilege scopes.',
        { required: [route.scope], granted: [...auth.grant.scopes] },
      );
      return;
    }
    route.handle(ex, auth.user, match);
    return;
  }
  sendBitbucketError(ex, 404, 'Resource not found');
}

/**
 * Accepts the access token from the `Authorization: Bearer` header only:
 * since CHANGE-3052 Bitbucket ignores `?access_token=`.
 */
export function authenticate(
  ex: Exchange,
  state: EmulatorState,
): { grant: Grant; user: SeedUser } | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(ex.req.headers.authorization ?? '');
  if (!match) {
    sendBitbucketError(
      ex,
      401,
      'Authentication required: send an access token in the Authorization: Bearer header.',
    );
    return undefined;
  }
  const lookup = state.lookupAccessToken(match[1]);
  if (lookup.status === 'expired') {
    sendBitbucketError(ex, 401, 'Access token expired.');
    return undefined;
  }
  if (lookup.status === 'unknown') {
    sendBitbucketError(ex, 401, 'Invalid access token.');
    return undefined;
  }
  return lookup;
}

/** The `/2.0/user` body of a user. */
export function userBody(
  ex: Exchange,
  user: SeedUser,
): Record<string, unknown> {
  const encodedUuid = encodeURIComponent(user.uuid);
  const body: Record<string, unknown> = {
    type: 'user',
    uuid: user.uuid,
    account_id: user.accountId,
    nickname: user.nickname,
    display_name: user.displayName,
  };
  if (user.username !== undefined) {
    body.username = user.username;
  }
  Object.assign(body, {
    account_status: 'active',
    has_2fa_enabled: null,
    is_staff: false,
    created_on: createdOn(user.uuid),
    links: {
      self: { href: `${ex.origin}/2.0/users/${encodedUuid}` },
      html: { href: `${ex.origin}/${encodedUuid}/` },
      avatar: { href: avatarUrl(ex.origin, user) },
    },
  });
  return body;
}

/** The avatar URL the emulator serves for a user. */
export function avatarUrl(origin: string, user: SeedUser): string {
  return `${origin}/account/${user.uuid.replace(/[{}]/g, '')}/avatar.svg`;
}

function emailBody(ex: Exchange, email: SeedEmail) {
  return {
    type: 'email',
    email: email.email,
    is_primary: email.primary === true,
    is_confirmed: email.confirmed === true,
    links: {
      self: {
        href: `${ex.origin}/2.0/user/emails/${encodeURIComponent(
          email.email,
        ).replace(/%40/g, '@')}`,
      },
    },
  };
}

/**
 * Answers one page of `items` in Bitbucket's envelope
 * (`pagelen`, `page`, `size`, `values`, `next`, `previous`).
 */
export function paginate(
  ex: Exchange,
  options: RestOptions,
  items: unknown[],
): void {
  const query = ex.url.searchParams;
  const pagelenParam = query.get('pagelen');
  const pageParam = query.get('page');
  let pagelen = options.pagelen;
  if (pagelenParam !== null) {
    pagelen = Number(pagelenParam);
    if (!Number.isInteger(pagelen) || pagelen < 1) {
      sendBitbucketError(ex, 400, `Invalid pagelen: ${pagelenParam}`);
      return;
    }
  }
  pagelen = Math.min(pagelen, MAX_PAGELEN);
  const page = pageParam === null ? 1 : Number(pageParam);
  if (!Number.isInteger(page) || page < 1) {
    sendBitbucketError(ex, 400, `Invalid page: ${pageParam}`);
    return;
  }
  const lastPage = Math.max(1, Math.ceil(items.length / pagelen));
  if (page > lastPage) {
    // [inferred] Bitbucket answers a page past the end with a 404.
    sendBitbucketError(ex, 404, 'Invalid page');
    return;
  }

  const pageUrl = (n: number) => {
    const params = new URLSearchParams(query);
    params.delete('access_token');
    params.set('page', String(n));
    return `${ex.origin}${ex.url.pathname}?${params}`;
  };
  const body: Record<string, unknown> = {
    pagelen,
    page,
    size: items.length,
    values: items.slice((page - 1) * pagelen, page * pagelen),
  };
  if (page < lastPage) {
    body.next = pageUrl(page + 1);
  }
  if (page > 1) {
    body.previous = pageUrl(page - 1);
  }
  sendJson(ex, 200, body);
}

/** A stable, plausible account creation time derived from the uuid. */
function createdOn(uuid: string): string {
  const hash = createHash('sha256').update(uuid).digest();
  const start = Date.UTC(2012, 0, 1);
  const span = Date.UTC(2024, 0, 1) - start;
  const ms = start + (hash.readUInt32BE(0) / 0xffffffff) * span;
  return new Date(Math.floor(ms)).toISOString().replace('Z', '+00:00');
}

export function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
