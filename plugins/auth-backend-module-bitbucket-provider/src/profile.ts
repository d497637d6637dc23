import { ServiceUnavailableError } from '@backstage/errors';

/**
 * One address of `GET /2.0/user/emails`.
 *
 * @public
 */
export interface BitbucketEmail {
  /** The address. */
  email: string;
  /** `is_primary`: the account's primary address. */
  isPrimary: boolean;
  /** `is_confirmed`: the owner proved they receive mail there. */
  isConfirmed: boolean;
}

/**
 * A workspace the user can access, from `GET /2.0/user/workspaces`, with the
 * role from `GET /2.0/user/workspaces/{slug}/permission` when it was asked.
 *
 * @public
 */
export interface BitbucketWorkspace {
  /** The workspace slug, as in `bitbucket.org/<slug>`. */
  slug: string;
  /** The workspace uuid, with braces. */
  uuid?: string;
  /** Whether the user administers the workspace. */
  administrator: boolean;
  /** `owner`, `member` or `collaborator`, when fetched. */
  permission?: string;
  /**
   * The ref of the catalog Group that the Bitbucket Cloud org import wrote
   * for this workspace, when that Group answered the workspace check.
   */
  group?: string;
}

/**
 * The Bitbucket Cloud account of a signed-in user, from `GET /2.0/user` and
 * `GET /2.0/user/emails`.
 *
 * @public
 */
export interface BitbucketProfile {
  /** Bitbucket's account uuid, with braces as Bitbucket writes it: `{…}`. */
  uuid: string;
  /** The Atlassian account id (e.g. `557058:…` or 24 hex digits). */
  accountId: string;
  /** Not unique; Bitbucket's replacement for `username`. */
  nickname?: string;
  /** GDPR-deprecated: present for some accounts only. */
  username?: string;
  /** `display_name`, else the nickname. */
  displayName?: string;
  /** `links.avatar.href` */
  avatarUrl?: string;
  /** `links.html.href` */
  profileUrl?: string;
  /** The address that is both primary and confirmed, if there is one. */
  email?: string;
  /** Every address Bitbucket returned, confirmed or not. */
  emails: BitbucketEmail[];
  /** The user's workspaces, when workspaces are configured. */
  workspaces?: BitbucketWorkspace[];
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The address that is primary **and** confirmed; never an unconfirmed one. */
export function selectPrimaryConfirmedEmail(
  emails: BitbucketEmail[],
): string | undefined {
  return emails.find(e => e.isPrimary && e.isConfirmed)?.email;
}

/** Maps one item of `/2.0/user/emails` `values`; undefined if it has no address. */
export function toBitbucketEmail(value: unknown): BitbucketEmail | undefined {
  const v = value as Record<string, unknown> | undefined;
  const email = str(v?.email);
  if (!email) return undefined;
  return {
    email,
    isPrimary: v?.is_primary === true,
    isConfirmed: v?.is_confirmed === true,
  };
}

/**
 * Builds the profile from the bodies of `/2.0/user` and the email items.
 * Throws when Bitbucket's answer lacks the identity fields.
 */
export function toBitbucketProfile(
  user: unknown,
  emails: BitbucketEmail[],
): BitbucketProfile {
  const u = (user ?? {}) as Record<string, any>;
  const uuid = str(u.uuid);
  const accountId = str(u.account_id);
  const missing = [!uuid && 'uuid', !accountId && 'account_id'].filter(Boolean);
  if (missing.length) {
    throw new ServiceUnavailableError(
      `Bitbucket's answer to GET /2.0/user lacks ${missing
        .map(m => `'${m}'`)
        .join(' and ')}; cannot identify the user. Try again later.`,
    );
  }
  return {
    uuid: uuid!,
    accountId: accountId!,
    nickname: str(u.nickname),
    username: str(u.username),
    displayName: str(u.display_name) ?? str(u.nickname),
    avatarUrl: str(u.links?.avatar?.href),
    profileUrl: str(u.links?.html?.href),
    email: selectPrimaryConfirmedEmail(emails),
    emails,
  };
}

/** Maps one `workspace_access` item; undefined if it has no slug. */
export function toBitbucketWorkspace(
  value: unknown,
): BitbucketWorkspace | undefined {
  const v = value as Record<string, any> | undefined;
  const slug = str(v?.workspace?.slug);
  if (!slug) return undefined;
  return {
    slug,
    uuid: str(v?.workspace?.uuid),
    administrator: v?.administrator === true,
  };
}

/** `{8a9d…}` or `8A9D…` → `8a9d…`: the form used to compare uuids. */
export function normalizeUuid(uuid: string): string {
  return uuid.trim().replace(/^\{/, '').replace(/\}$/, '').toLowerCase();
}
