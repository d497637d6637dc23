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

/**
 * Turns the configured workspaces' member lists into Group and User
 * entities: one Group per workspace and one User per account, however many
 * of the workspaces list it; each User is `memberOf` the Groups of its
 * workspaces; each entity's location is its page on Bitbucket.
 */
export async function buildOrgEntities(options: {
  listings: WorkspaceMembers[];
  transformers: OrgTransformers;
  ctx: BitbucketCloudTransformerContext;
  /** Bitbucket's web host, for the location annotations. */
  baseUrl: string;
}): Promise<{ users: UserEntity[]; groups: GroupEntity[] }> {
  const { listings, transformers, ctx, baseUrl } = options;
  const groups: GroupEntity[] = [];
  const groupByWorkspace = new Map<string, GroupEntity>();
  const members = new Map<string, BitbucketCloudMember>();
  const seenWorkspaces = new Set<string>();

  for (const { workspace, members: listed } of listings) {
    const key = workspace.uuid.toLowerCase();
    // the same workspace configured by slug and by uuid
    if (seenWorkspaces.has(key)) continue;
    seenWorkspaces.add(key);
    const group = await run(
      () => transformers.group(workspace, ctx),
      `the group transformer failed for workspace '${workspace.slug}'`,
    );
    if (group) {
      groups.push(withLocation(group, `${baseUrl}/${workspace.slug}/`));
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
  for (const member of members.values()) {
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
      withLocation(user, `${baseUrl}/${encodeURIComponent(member.uuid)}/`),
    );
  }

  checkUnique([...groups, ...users]);
  return { users, groups };
}

async function run<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new Error(`${what}: ${(error as Error)?.message ?? String(error)}`);
  }
}

/** Adds the location annotations a transformer did not set. */
function withLocation<T extends Entity>(entity: T, url: string): T {
  const annotations = entity.metadata.annotations ?? {};
  entity.metadata.annotations = {
    [ANNOTATION_LOCATION]: `url:${url}`,
    [ANNOTATION_ORIGIN_LOCATION]: `url:${url}`,
    ...annotations,
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
