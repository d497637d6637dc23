import { Exchange } from './http';
import {
  authenticate,
  paginate,
  RestOptions,
  safeDecode,
  sendBitbucketError,
  userBody,
} from './rest';
import { SeedUser, workspaceUuid } from './seed';
import type { EmulatorState } from './state';

// https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/#api-workspaces-workspace-members-get
// https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/#api-workspaces-workspace-permissions-get
const MEMBERS_PATH = /^\/2\.0\/workspaces\/([^/]+)\/(members|permissions)\/?$/;

/** A workspace as the seed's users' memberships describe it. */
interface Workspace {
  slug: string;
  uuid: string;
  name: string;
  members: SeedUser[];
}

/** Who called, and which workspaces' members they may list. */
interface Caller {
  scopes: string[];
  workspaces: string[];
  /** Workspaces whose permissions the caller may list: a user's owned ones, a consumer's own. */
  administers: string[];
}

/**
 * `GET /2.0/workspaces/{workspace}/members` and
 * `GET /2.0/workspaces/{workspace}/permissions`, `{workspace}` being a slug
 * or a braced uuid: every account with access to the workspace (owners,
 * members and collaborators alike) as a paginated `workspace_membership`;
 * the permissions listing adds each one's `permission` (`owner`, `member`,
 * `collaborator`), which is the only place Bitbucket tells collaborators
 * apart. The members listing answers a user token whose user is in the
 * workspace, and a client-credentials token whose consumer belongs to the
 * workspace (`consumers[].workspaces` in the seed); the permissions listing
 * is for workspace admins: an owner's user token, or the workspace's own
 * consumer (its client-credentials token acts as the workspace).
 * Returns false when the request is for another path.
 */
export function handleWorkspaceMembers(
  ex: Exchange,
  state: EmulatorState,
  options: RestOptions,
): boolean {
  const match = MEMBERS_PATH.exec(ex.url.pathname);
  if (!match) {
    return false;
  }
  if (ex.req.method !== 'GET' && ex.req.method !== 'HEAD') {
    sendBitbucketError(
      ex,
      405,
      `Method ${ex.req.method} is not allowed here.`,
      undefined,
      { allow: 'GET' },
    );
    return true;
  }
  const caller = authenticateCaller(ex, state);
  if (!caller) {
    return true;
  }
  // [inferred] the scope of "Workspace membership: Read", as for /2.0/user/workspaces
  if (!caller.scopes.includes('team')) {
    sendBitbucketError(
      ex,
      403,
      'Your credentials lack one or more required privilege scopes.',
      { required: ['team'], granted: [...caller.scopes] },
    );
    return true;
  }
  const wanted = safeDecode(match[1]);
  const workspace = findWorkspace(state, wanted);
  if (!workspace) {
    // [inferred] Bitbucket's text for an unknown workspace
    sendBitbucketError(ex, 404, `No workspace with identifier '${wanted}'.`);
    return true;
  }
  if (!caller.workspaces.includes(workspace.slug)) {
    // [inferred] Bitbucket's text for a workspace the caller cannot see
    sendBitbucketError(ex, 403, 'You do not have access to this workspace.');
    return true;
  }
  if (match[2] === 'members') {
    paginate(
      ex,
      options,
      workspace.members.map(user => membershipBody(ex, workspace, user)),
    );
    return true;
  }
  if (!caller.administers.includes(workspace.slug)) {
    // [doc] "Only users with admin permission for the workspace may access
    // this resource"; [inferred] the text
    sendBitbucketError(
      ex,
      403,
      'You must be an administrator of this workspace to list its permissions.',
    );
    return true;
  }
  const wantedPermission = permissionFilter(ex.url.searchParams.get('q'));
  if (wantedPermission === null) {
    sendBitbucketError(
      ex,
      400,
      `Invalid query: ${ex.url.searchParams.get('q')}`,
    );
    return true;
  }
  paginate(
    ex,
    options,
    workspace.members
      .filter(
        user =>
          wantedPermission === undefined ||
          roleIn(user, workspace) === wantedPermission,
      )
      .map(user => permissionBody(workspace, user)),
  );
  return true;
}

/** `q=permission="owner"` (the one filter the docs name), undefined without `q`, null otherwise. */
function permissionFilter(q: string | null): string | undefined | null {
  if (q === null) {
    return undefined;
  }
  const match = /^\s*permission\s*=\s*"(owner|member|collaborator)"\s*$/.exec(
    q,
  );
  return match ? match[1] : null;
}

function roleIn(user: SeedUser, workspace: Workspace): string {
  return (
    (user.workspaces ?? []).find(
      w => workspaceUuid(w).toLowerCase() === workspace.uuid.toLowerCase(),
    )?.role ?? 'member'
  );
}

/**
 * One entry of the permissions listing, as the docs' example shows it: the
 * account's uuid, nickname and display name (no links), the permission and
 * the workspace.
 */
function permissionBody(workspace: Workspace, user: SeedUser) {
  return {
    type: 'workspace_membership',
    permission: roleIn(user, workspace),
    user: {
      type: 'user',
      uuid: user.uuid,
      account_id: user.accountId,
      nickname: user.nickname,
      display_name: user.displayName,
    },
    workspace: {
      type: 'workspace',
      uuid: workspace.uuid,
      slug: workspace.slug,
      name: workspace.name,
    },
  };
}

/**
 * A client-credentials token of the consumer, or else a user token (which
 * answers 401 itself when it is neither).
 */
function authenticateCaller(
  ex: Exchange,
  state: EmulatorState,
): Caller | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(
    ex.req.headers.authorization ?? '',
  )?.[1];
  if (bearer) {
    const lookup = state.consumerTokens.lookup(bearer);
    if (lookup.status === 'expired') {
      sendBitbucketError(ex, 401, 'Access token expired.');
      return undefined;
    }
    if (lookup.status === 'valid') {
      const consumer = state.consumer(lookup.grant.clientId);
      return {
        scopes: lookup.grant.scopes,
        workspaces: consumer?.workspaces ?? [],
        administers: consumer?.workspaces ?? [],
      };
    }
  }
  const auth = authenticate(ex, state);
  if (!auth) {
    return undefined;
  }
  return {
    scopes: auth.grant.scopes,
    workspaces: (auth.user.workspaces ?? []).map(w => w.slug),
    administers: (auth.user.workspaces ?? [])
      .filter(w => w.role === 'owner')
      .map(w => w.slug),
  };
}

/** The workspace with this slug or braced uuid (any letter case), with its members in seed order. */
function findWorkspace(
  state: EmulatorState,
  id: string,
): Workspace | undefined {
  const wanted = id.toLowerCase();
  let found: Workspace | undefined;
  for (const user of state.users()) {
    const membership = (user.workspaces ?? []).find(
      w => w.slug === wanted || workspaceUuid(w).toLowerCase() === wanted,
    );
    if (membership) {
      found ??= {
        slug: membership.slug,
        uuid: workspaceUuid(membership),
        name: membership.name ?? membership.slug,
        members: [],
      };
      found.members.push(user);
    }
  }
  return found;
}

function membershipBody(ex: Exchange, workspace: Workspace, user: SeedUser) {
  const slug = encodeURIComponent(workspace.slug);
  // GDPR: Bitbucket shows other people's accounts without `username`
  const { username: _username, ...account } = userBody(ex, user);
  return {
    type: 'workspace_membership',
    links: {
      self: {
        href: `${ex.origin}/2.0/workspaces/${slug}/members/${encodeURIComponent(
          user.uuid,
        )}`,
      },
    },
    user: account,
    workspace: {
      type: 'workspace',
      uuid: workspace.uuid,
      slug: workspace.slug,
      name: workspace.name,
      links: {
        self: { href: `${ex.origin}/2.0/workspaces/${slug}` },
        html: { href: `${ex.origin}/${slug}/` },
      },
    },
  };
}
