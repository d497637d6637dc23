import { GroupEntity, UserEntity } from '@backstage/catalog-model';
import { LoggerService } from '@backstage/backend-plugin-api';

/** Annotation with the account's uuid, braces included, as Bitbucket writes it. */
export const USER_ID_ANNOTATION = 'bitbucket.org/user-id';
/** Annotation with the account's Atlassian account id. */
export const ACCOUNT_ID_ANNOTATION = 'bitbucket.org/account-id';
/** Annotation with the account's (GDPR-deprecated) username, when Bitbucket gives one. */
export const USERNAME_ANNOTATION = 'bitbucket.org/username';
/** Annotation with the workspace's slug. */
export const WORKSPACE_SLUG_ANNOTATION = 'bitbucket.org/workspace-slug';
/** Annotation with the workspace's uuid, braces included. */
export const WORKSPACE_UUID_ANNOTATION = 'bitbucket.org/workspace-uuid';

/**
 * A Bitbucket Cloud workspace, as `GET /2.0/workspaces/{workspace}/members`
 * describes it.
 *
 * @public
 */
export interface BitbucketCloudWorkspace {
  /** The workspace's uuid with braces, e.g. `{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}`. */
  uuid: string;
  /** The part after `bitbucket.org/` in the workspace's URL, e.g. `acme`. */
  slug: string;
  /** The workspace's display name. */
  name?: string;
  /** `links.avatar.href`, when Bitbucket gives one. */
  avatarUrl?: string;
}

/**
 * A member of one or more of the configured workspaces. Bitbucket shows no
 * one's email address to others (not even to a workspace admin), so there is
 * no email here: a user transformer can add one from elsewhere.
 *
 * @public
 */
export interface BitbucketCloudMember {
  /** The account's uuid with braces, e.g. `{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}`. */
  uuid: string;
  /** The Atlassian account id, e.g. `557058:6d2b9f4e-…` or 24 hex digits. */
  accountId?: string;
  /** Deprecated by Bitbucket (GDPR); present only when Bitbucket still sends it. */
  username?: string;
  /** Not unique, and changed by its owner at will. */
  nickname?: string;
  /** The name the person shows, e.g. `Jane Doe`. */
  displayName?: string;
  /** `links.avatar.href` */
  avatarUrl?: string;
  /** The configured workspaces the account is a member of. */
  workspaces: BitbucketCloudWorkspace[];
}

/**
 * What a transformer is told besides the item it transforms.
 *
 * @public
 */
export interface BitbucketCloudTransformerContext {
  /** The provider's id: the key under `catalog.providers.bitbucketCloudOrg`. */
  providerId: string;
  /** The catalog's logger. */
  logger: LoggerService;
}

/**
 * Turns a workspace member into a User entity, or `undefined` to leave the
 * account out of the catalog. The provider adds `spec.memberOf` (the groups
 * of the member's workspaces) and the location annotations afterwards.
 *
 * @public
 */
export type BitbucketCloudUserTransformer = (
  member: BitbucketCloudMember,
  ctx: BitbucketCloudTransformerContext,
) => Promise<UserEntity | undefined>;

/**
 * Turns a workspace into a Group entity, or `undefined` to import no group
 * for it (its members then get no `memberOf` for it).
 *
 * @public
 */
export type BitbucketCloudGroupTransformer = (
  workspace: BitbucketCloudWorkspace,
  ctx: BitbucketCloudTransformerContext,
) => Promise<GroupEntity | undefined>;

const UUID =
  /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i;

/**
 * The entity name of a Bitbucket account: its uuid without braces, in lower
 * case, e.g. `3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15` for
 * `{3F1C2A8E-5B7D-4E29-9A61-0C4D8B2E7F15}`. It never changes (a nickname
 * does), no two accounts share it, and it is the name the Bitbucket sign-in
 * module gives an account it signs in without a catalog User
 * (`dangerouslyAllowSignInWithoutUserInCatalog`), so that such an account
 * keeps its entity ref once it is imported. Throws for anything but a uuid.
 *
 * @public
 */
export function bitbucketCloudUserEntityName(uuid: string): string {
  const match = UUID.exec(uuid.trim());
  if (!match) {
    throw new TypeError(
      `'${uuid}' is not a Bitbucket account uuid such as '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}'`,
    );
  }
  return match[1].toLowerCase();
}

/**
 * The default user transformer: a User named by
 * {@link bitbucketCloudUserEntityName}, annotated `bitbucket.org/user-id`,
 * `bitbucket.org/account-id` and (when present) `bitbucket.org/username`, with
 * the display name (or the nickname) and the avatar as its profile.
 *
 * @public
 */
export const defaultBitbucketCloudUserTransformer: BitbucketCloudUserTransformer =
  async member => {
    const annotations: Record<string, string> = {
      [USER_ID_ANNOTATION]: member.uuid,
    };
    if (member.accountId) annotations[ACCOUNT_ID_ANNOTATION] = member.accountId;
    if (member.username) annotations[USERNAME_ANNOTATION] = member.username;
    const profile: NonNullable<UserEntity['spec']['profile']> = {};
    const displayName = member.displayName ?? member.nickname;
    if (displayName) profile.displayName = displayName;
    if (member.avatarUrl) profile.picture = member.avatarUrl;
    return {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'User',
      metadata: {
        name: bitbucketCloudUserEntityName(member.uuid),
        annotations,
      },
      spec: { profile, memberOf: [] },
    };
  };

/**
 * The default group transformer: a Group of type `workspace` named by the
 * workspace's slug in lower case, in the `default` namespace, so that it is
 * the group the Bitbucket sign-in module's `workspaceOwnership` names
 * (`group:default/<slug>`); annotated `bitbucket.org/workspace-slug` and
 * `bitbucket.org/workspace-uuid`, with the workspace's name and avatar.
 *
 * @public
 */
export const defaultBitbucketCloudGroupTransformer: BitbucketCloudGroupTransformer =
  async workspace => {
    const profile: NonNullable<GroupEntity['spec']['profile']> = {};
    if (workspace.name) profile.displayName = workspace.name;
    if (workspace.avatarUrl) profile.picture = workspace.avatarUrl;
    return {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Group',
      metadata: {
        name: workspace.slug.toLowerCase(),
        annotations: {
          [WORKSPACE_SLUG_ANNOTATION]: workspace.slug,
          [WORKSPACE_UUID_ANNOTATION]: workspace.uuid,
        },
      },
      spec: { type: 'workspace', profile, children: [] },
    };
  };
