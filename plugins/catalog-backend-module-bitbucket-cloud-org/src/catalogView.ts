import { AuthService } from '@backstage/backend-plugin-api';
import { CATALOG_FILTER_EXISTS } from '@backstage/catalog-client';
import {
  ANNOTATION_ORIGIN_LOCATION,
  DEFAULT_NAMESPACE,
  Entity,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import type { ListedMember, WorkspaceMembers } from './client';
import {
  canonicalUuid,
  MEMBER_UUIDS_ANNOTATION,
  MEMBERS_LISTED_AT_ANNOTATION,
  parseMemberUuids,
  provenanceOf,
} from './contract';
import {
  ACCOUNT_ID_ANNOTATION,
  USER_ID_ANNOTATION,
  USERNAME_ANNOTATION,
  WORKSPACE_SLUG_ANNOTATION,
  WORKSPACE_UUID_ANNOTATION,
} from './transformers';

/** A workspace Group as this provider last emitted it, read back from the catalog. */
export interface EmittedGroup {
  name: string;
  namespace: string;
  /** Its listing, rebuilt from the Group's annotations and this provider's Users. */
  listing: WorkspaceMembers;
}

/** What a run needs from the catalog. */
export interface CatalogView {
  /**
   * Accounts claimed by a User this provider does not manage (a hand-written
   * one, another source's): canonical uuid to that User's ref.
   */
  claimed: Map<string, string>;
  /** The Groups this provider emitted, by canonical workspace uuid. */
  groups: Map<string, EmittedGroup>;
}

/**
 * Reads, with the catalog plugin's own service credentials, every User that
 * carries `bitbucket.org/user-id` and the Groups this provider emitted (known
 * by their provenance `bitbucket-cloud-org:<providerId>`, which only this
 * provider writes). Two catalog calls per run.
 */
export async function readCatalogView(options: {
  catalog: Pick<CatalogService, 'getEntities'>;
  auth: AuthService;
  providerId: string;
  /** Bitbucket's web host: the location of this provider's Users before the provenance. */
  baseUrl: string;
}): Promise<CatalogView> {
  const { catalog, auth, providerId, baseUrl } = options;
  const credentials = await auth.getOwnServiceCredentials();
  const provenance = provenanceOf(providerId);
  const [users, groups] = await Promise.all([
    catalog.getEntities(
      {
        filter: {
          kind: 'User',
          [`metadata.annotations.${USER_ID_ANNOTATION}`]: CATALOG_FILTER_EXISTS,
        },
      },
      { credentials },
    ),
    catalog.getEntities(
      {
        filter: {
          kind: 'Group',
          [`metadata.annotations.${ANNOTATION_ORIGIN_LOCATION}`]: provenance,
        },
      },
      { credentials },
    ),
  ]);

  const claimed = new Map<string, string>();
  const ours = new Map<string, Entity>();
  for (const user of users.items) {
    const uuid = canonicalUuid(
      String(user.metadata.annotations?.[USER_ID_ANNOTATION] ?? ''),
    );
    if (!uuid) continue;
    const origin = user.metadata.annotations?.[ANNOTATION_ORIGIN_LOCATION];
    // before the provenance (0.1.0), this provider's Users were located at
    // their Bitbucket page, which no location-read entity can carry either
    const legacy = `url:${baseUrl}/${encodeURIComponent(
      String(user.metadata.annotations?.[USER_ID_ANNOTATION]),
    )}/`;
    if (origin === provenance || origin === legacy) {
      ours.set(uuid, user);
    } else if (!claimed.has(uuid)) {
      claimed.set(uuid, stringifyEntityRef(user));
    }
  }

  const emitted = new Map<string, EmittedGroup>();
  for (const group of groups.items) {
    const annotations = group.metadata.annotations ?? {};
    const uuid = canonicalUuid(annotations[WORKSPACE_UUID_ANNOTATION] ?? '');
    const slug = annotations[WORKSPACE_SLUG_ANNOTATION];
    const listedAt = annotations[MEMBERS_LISTED_AT_ANNOTATION];
    if (!uuid || !slug || !listedAt) continue;
    const profile = (group.spec as any)?.profile ?? {};
    const members = parseMemberUuids(annotations[MEMBER_UUIDS_ANNOTATION]).map(
      member => memberFrom(member, ours.get(member)),
    );
    emitted.set(uuid, {
      name: group.metadata.name,
      namespace: group.metadata.namespace ?? DEFAULT_NAMESPACE,
      listing: {
        workspace: {
          uuid: annotations[WORKSPACE_UUID_ANNOTATION],
          slug,
          ...(typeof profile.displayName === 'string'
            ? { name: profile.displayName }
            : {}),
          ...(typeof profile.picture === 'string'
            ? { avatarUrl: profile.picture }
            : {}),
        },
        members,
        listedAt,
        collaborators: 0,
      },
    });
  }
  return { claimed, groups: emitted };
}

/** A member rebuilt from the User this provider wrote for it, or its uuid alone. */
function memberFrom(uuid: string, user: Entity | undefined): ListedMember {
  const annotations = user?.metadata.annotations ?? {};
  const profile = (user?.spec as any)?.profile ?? {};
  const member: ListedMember = {
    uuid: annotations[USER_ID_ANNOTATION] ?? uuid,
  };
  if (annotations[ACCOUNT_ID_ANNOTATION])
    member.accountId = annotations[ACCOUNT_ID_ANNOTATION];
  if (annotations[USERNAME_ANNOTATION])
    member.username = annotations[USERNAME_ANNOTATION];
  if (typeof profile.displayName === 'string')
    member.displayName = profile.displayName;
  if (typeof profile.picture === 'string') member.avatarUrl = profile.picture;
  return member;
}
