import {
  ANNOTATION_LOCATION,
  ANNOTATION_ORIGIN_LOCATION,
  DEFAULT_NAMESPACE,
  Entity,
  GroupEntity,
  stringifyEntityRef,
  UserEntity,
} from '@backstage/catalog-model';
import type { WorkspaceMembers } from './client';
import {
  canonicalUuid,
  MEMBER_UUIDS_ANNOTATION,
  MEMBERS_LISTED_AT_ANNOTATION,
  memberUuidsValue,
  provenanceOf,
  VIEW_URL_ANNOTATION,
} from './contract';
import type {
  BitbucketCloudGroupTransformer,
  BitbucketCloudMember,
  BitbucketCloudTransformerContext,
  BitbucketCloudUserTransformer,
} from './transformers';

/** The transformers a provider runs. */
export interface OrgTransformers {
  user: BitbucketCloudUserTransformer;
  group: BitbucketCloudGroupTransformer;
}

/** The name (and namespace) a workspace's Group keeps, whatever its slug. */
export interface GroupName {
  name: string;
  namespace?: string;
}

/**
 * Turns the configured workspaces' member lists into Group and User
 * entities: one Group per workspace and one User per account, however many
 * of the workspaces list it; each User is `memberOf` the Groups of its
 * workspaces. Every entity's location is the provenance
 * `bitbucket-cloud-org:<providerId>` and its `backstage.io/view-url` its page
 * on Bitbucket; each Group carries its members' uuids and the time they were
 * listed. No User is written for an account that another source's User
 * claims (`claimed`): it stays in its Groups' member uuids.
 */
export async function buildOrgEntities(options: {
  listings: WorkspaceMembers[];
  transformers: OrgTransformers;
  ctx: BitbucketCloudTransformerContext;
  /** Bitbucket's web host, for the view URLs. */
  baseUrl: string;
  /** Canonical account uuid to the ref of the User of another source that claims it. */
  claimed?: Map<string, string>;
  /** Canonical workspace uuid to the Group name it keeps. */
  groupNames?: Map<string, GroupName>;
}): Promise<{
  users: UserEntity[];
  groups: GroupEntity[];
  /** Accounts left without a User because another source's User claims them. */
  leftToOthers: Array<{ uuid: string; ref: string }>;
}> {
  const { listings, transformers, ctx, baseUrl } = options;
  const claimed = options.claimed ?? new Map<string, string>();
  const provenance = provenanceOf(ctx.providerId);
  const groups: GroupEntity[] = [];
  const groupByWorkspace = new Map<string, GroupEntity>();
  const members = new Map<string, BitbucketCloudMember>();
  const seenWorkspaces = new Set<string>();

  for (const listing of listings) {
    const { workspace, members: listed } = listing;
    const key = workspace.uuid.toLowerCase();
    // the same workspace configured by slug and by uuid
    if (seenWorkspaces.has(key)) continue;
    seenWorkspaces.add(key);
    const group = await run(
      () => transformers.group(workspace, ctx),
      `the group transformer failed for workspace '${workspace.slug}'`,
    );
    if (group) {
      const pinned = options.groupNames?.get(canonicalUuid(workspace.uuid)!);
      if (pinned) {
        group.metadata.name = pinned.name;
        if (pinned.namespace) group.metadata.namespace = pinned.namespace;
      }
      group.metadata.annotations = {
        ...group.metadata.annotations,
        [MEMBERS_LISTED_AT_ANNOTATION]: listing.listedAt,
        [MEMBER_UUIDS_ANNOTATION]: memberUuidsValue(listed.map(m => m.uuid)),
      };
      groups.push(
        withProvenance(group, provenance, `${baseUrl}/${workspace.slug}/`),
      );
      groupByWorkspace.set(key, group);
    }
    for (const member of listed) {
      const id = member.uuid.toLowerCase();
      const known = members.get(id);
      if (!known) {
        members.set(id, { ...member, workspaces: [workspace] });
      } else if (!known.workspaces.some(w => w.uuid.toLowerCase() === key)) {
        known.workspaces.push(workspace);
      }
    }
  }

  const users: UserEntity[] = [];
  const leftToOthers: Array<{ uuid: string; ref: string }> = [];
  for (const member of members.values()) {
    const claimedBy = claimed.get(canonicalUuid(member.uuid)!);
    if (claimedBy) {
      leftToOthers.push({ uuid: member.uuid, ref: claimedBy });
      continue;
    }
    const user = await run(
      () => transformers.user(member, ctx),
      `the user transformer failed for account ${member.uuid}`,
    );
    if (!user) continue;
    const namespace = user.metadata.namespace ?? DEFAULT_NAMESPACE;
    const memberOf = new Set(user.spec.memberOf ?? []);
    for (const workspace of member.workspaces) {
      const group = groupByWorkspace.get(workspace.uuid.toLowerCase());
      if (!group) continue;
      const groupNamespace = group.metadata.namespace ?? DEFAULT_NAMESPACE;
      memberOf.add(
        groupNamespace === namespace
          ? group.metadata.name
          : `${groupNamespace}/${group.metadata.name}`,
      );
    }
    user.spec.memberOf = [...memberOf];
    users.push(
      withProvenance(
        user,
        provenance,
        `${baseUrl}/${encodeURIComponent(member.uuid)}/`,
      ),
    );
  }

  checkUnique([...groups, ...users]);
  return { users, groups, leftToOthers };
}

async function run<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new Error(`${what}: ${(error as Error)?.message ?? String(error)}`);
  }
}

/**
 * Sets both location annotations to the provenance, whatever a transformer
 * set (the sign-in trusts them), and the view URL a transformer did not set.
 */
function withProvenance<T extends Entity>(
  entity: T,
  provenance: string,
  url: string,
): T {
  entity.metadata.annotations = {
    [VIEW_URL_ANNOTATION]: url,
    ...entity.metadata.annotations,
    [ANNOTATION_LOCATION]: provenance,
    [ANNOTATION_ORIGIN_LOCATION]: provenance,
  };
  return entity;
}

function checkUnique(entities: Entity[]): void {
  const seen = new Set<string>();
  for (const entity of entities) {
    const ref = stringifyEntityRef(entity);
    if (seen.has(ref)) {
      throw new Error(
        `two imported entities are both ${ref}; a custom transformer must give each account and workspace its own name`,
      );
    }
    seen.add(ref);
  }
}
