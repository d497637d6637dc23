import { createHash } from 'node:crypto';
import {
  AllowedWorkspace,
  describeAllowed,
  WORKSPACE_ROLES,
  WorkspaceSettings,
} from './config';
import { BitbucketProfile, BitbucketWorkspace, normalizeUuid } from './profile';

/** The outcome of the workspace check, for the audit log. */
export type WorkspaceCheck = 'not configured' | 'passed';

/** A workspace check that refused: what the user reads, and what the audit line says. */
export interface WorkspaceRefusal {
  /** Shown in the browser: names the account and only workspaces the user is in. */
  userMessage: string;
  /** For the admin's audit line: the allow-list and every role found. */
  auditReason: string;
}

/** The answer of `GET /2.0/user/workspaces/{workspace}/permission` for one entry. */
export interface WorkspacePermission {
  /** `owner`, `member` or `collaborator`; undefined when not a member. */
  role?: string;
  /** The workspace the answer is about, when Bitbucket names it. */
  workspace?: { slug?: string; uuid?: string };
}

function rank(role: string | undefined): number {
  return role ? (WORKSPACE_ROLES as readonly string[]).indexOf(role) : -1;
}

const MEMBER_RANK = rank('member');

function who(profile: BitbucketProfile): string {
  return `${profile.displayName ?? profile.nickname ?? 'unknown'} (${
    profile.uuid
  })`;
}

function sameUuid(a: string | undefined, b: string): boolean {
  return a !== undefined && normalizeUuid(a) === normalizeUuid(b);
}

function matches(
  entry: AllowedWorkspace,
  w: { slug?: string; uuid?: string },
): boolean {
  return entry.kind === 'slug'
    ? w.slug?.toLowerCase() === entry.slug
    : sameUuid(w.uuid, entry.uuid);
}

/** The user's workspaces that are on the allow-list, with their role. */
function allowedMemberships(
  profile: BitbucketProfile,
  allowed: AllowedWorkspace[],
): Array<BitbucketWorkspace & { permission: string }> {
  return (profile.workspaces ?? []).filter(
    (w): w is BitbucketWorkspace & { permission: string } =>
      w.permission !== undefined && allowed.some(entry => matches(entry, w)),
  );
}

/**
 * Merges the permission answers of the allowed entries into the user's
 * workspaces. An answer counts only for the workspace it names: a uuid
 * entry is matched by uuid alone, so that another workspace that took an
 * old slug never passes for it. Roles of allowed workspaces not answered
 * now are dropped: the answers are the current truth.
 */
export function mergePermissions(
  workspaces: BitbucketWorkspace[],
  allowed: AllowedWorkspace[],
  answers: WorkspacePermission[],
): BitbucketWorkspace[] {
  const merged = workspaces.map(w =>
    allowed.some(entry => matches(entry, w))
      ? { ...w, permission: undefined, group: undefined }
      : { ...w },
  );
  allowed.forEach((entry, i) => {
    const { role, workspace: named = {} } = answers[i] ?? {};
    if (!role) return;
    // an answer about another workspace than the entry names counts for nothing
    const key = entry.kind === 'uuid' ? named.uuid : named.slug;
    if (key !== undefined && !matches(entry, named)) return;
    const slug = named.slug ?? (entry.kind === 'slug' ? entry.slug : undefined);
    const uuid = named.uuid ?? (entry.kind === 'uuid' ? entry.uuid : undefined);
    const known = merged.find(
      w => matches(entry, w) || (uuid !== undefined && sameUuid(w.uuid, uuid)),
    );
    if (known) {
      known.permission = role;
      if (slug) known.slug = slug;
      known.uuid ??= uuid;
    } else if (slug) {
      merged.push({
        slug,
        uuid,
        administrator: role === 'owner',
        permission: role,
      });
    }
  });
  return merged;
}

/**
 * Decides whether the user may sign in: a role of at least
 * `minimumWorkspaceRole` in one of `allowedWorkspaces`. Runs before any
 * catalog lookup. Undefined when the user passes.
 */
export function workspaceRefusal(
  profile: BitbucketProfile,
  settings: WorkspaceSettings,
): WorkspaceRefusal | undefined {
  const { allowed, minimumRole = 'member' } = settings;
  if (!allowed) return undefined;
  const memberships = allowedMemberships(profile, allowed);
  if (memberships.some(w => rank(w.permission) >= rank(minimumRole))) {
    return undefined;
  }
  const allowList = allowed.map(describeAllowed).join(', ');
  if (memberships.length === 0) {
    const mine = (profile.workspaces ?? []).map(w => w.slug).join(', ');
    return {
      userMessage: `Your Bitbucket account ${who(
        profile,
      )} is not a member of a Bitbucket workspace that may sign in to this portal. Ask your Backstage admin which workspace to join, or sign in with another Bitbucket account.`,
      auditReason: `not a member of any allowed workspace (allowed: ${allowList}; member of: ${
        mine || 'none'
      })`,
    };
  }
  const roles = memberships
    .map(w => `the role '${w.permission}' in the workspace '${w.slug}'`)
    .join(' and ');
  const names = memberships.map(w => `'${w.slug}'`).join(' or ');
  const article = /^[aeiou]/.test(minimumRole) ? 'an' : 'a';
  return {
    userMessage: `Your Bitbucket account ${who(
      profile,
    )} has ${roles}, and this portal needs at least the role '${minimumRole}' there. Ask an admin of ${names} to make you ${article} ${minimumRole}, or sign in with another Bitbucket account.`,
    auditReason: `role below minimumWorkspaceRole '${minimumRole}' (allowed: ${allowList}; roles: ${memberships
      .map(w => `${w.slug}: ${w.permission}`)
      .join(', ')})`,
  };
}

/** Whether {@link workspaceRefusal} was configured, for the audit line. */
export function workspaceCheck(settings: WorkspaceSettings): WorkspaceCheck {
  return settings.allowed ? 'passed' : 'not configured';
}

/**
 * For each allowed workspace in which the user is at least a member, when
 * ownership is enabled: the org import's Group that listed the user, when
 * the catalog answered (its pinned name: a slug rename moves nobody into
 * another group), else `group:<namespace>/<prefix><slug>`. A workspace
 * that is not on the allow-list never grants a group: anyone can create
 * one with any free slug.
 */
export function workspaceOwnershipRefs(
  profile: BitbucketProfile,
  settings: WorkspaceSettings,
): string[] {
  const { ownership, allowed } = settings;
  if (!ownership.enabled || !allowed) return [];
  return allowedMemberships(profile, allowed)
    .filter(w => rank(w.permission) >= MEMBER_RANK)
    .map(
      w =>
        w.group ??
        `group:${ownership.namespace}/${
          ownership.prefix
        }${w.slug.toLowerCase()}`,
    );
}

/**
 * A digest of the settings a workspace check depends on: a cached check
 * made under other settings is not reused.
 */
export function workspaceSettingsFingerprint(
  settings: WorkspaceSettings,
): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        settings.allowed?.map(e => `${e.kind}:${describeAllowed(e)}`) ?? null,
        settings.minimumRole ?? null,
        settings.ownership,
      ]),
    )
    .digest('base64url')
    .slice(0, 16);
}
