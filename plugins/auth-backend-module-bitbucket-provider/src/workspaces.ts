import { NotAllowedError } from '@backstage/errors';
import { WORKSPACE_ROLES, WorkspaceSettings } from './config';
import { BitbucketProfile } from './profile';

/** The outcome of the workspace check, for the audit log. */
export type WorkspaceCheck = 'not configured' | 'passed';

function who(profile: BitbucketProfile): string {
  return `${profile.displayName ?? profile.nickname ?? 'unknown'} (${
    profile.uuid
  })`;
}

function rank(role: string | undefined): number {
  return role ? (WORKSPACE_ROLES as readonly string[]).indexOf(role) : -1;
}

/**
 * Refuses a user who is in none of `allowedWorkspaces`, or whose role there
 * is below `minimumWorkspaceRole`, with a message naming the workspaces and
 * the account. Runs before any catalog lookup.
 */
export function checkWorkspaceAccess(
  profile: BitbucketProfile,
  settings: WorkspaceSettings,
): WorkspaceCheck {
  const { allowed, minimumRole } = settings;
  if (!allowed) return 'not configured';
  const memberships = (profile.workspaces ?? []).filter(w =>
    allowed.includes(w.slug.toLowerCase()),
  );
  if (memberships.length === 0) {
    throw new NotAllowedError(
      `Your Bitbucket account ${who(
        profile,
      )} is not a member of a workspace allowed to sign in to this portal (allowed: ${allowed.join(
        ', ',
      )}). Ask an admin of one of these workspaces to add you, or sign in with another Bitbucket account.`,
    );
  }
  if (
    minimumRole &&
    !memberships.some(w => rank(w.permission) >= rank(minimumRole))
  ) {
    const roles = memberships
      .map(w => `${w.slug}: ${w.permission ?? 'no role'}`)
      .join(', ');
    throw new NotAllowedError(
      `Your Bitbucket account ${who(
        profile,
      )} has the role ${roles}, but this portal requires at least '${minimumRole}' in one of: ${allowed.join(
        ', ',
      )}. Ask a workspace admin for a higher role.`,
    );
  }
  return 'passed';
}

/**
 * `group:<namespace>/<prefix><slug>` for each workspace of the user (only
 * the allowed ones when an allow-list is set), when ownership is enabled.
 */
export function workspaceOwnershipRefs(
  profile: BitbucketProfile,
  settings: WorkspaceSettings,
): string[] {
  const { ownership, allowed } = settings;
  if (!ownership.enabled) return [];
  return (profile.workspaces ?? [])
    .map(w => w.slug.toLowerCase())
    .filter(slug => !allowed || allowed.includes(slug))
    .map(slug => `group:${ownership.namespace}/${ownership.prefix}${slug}`);
}
