import { AuthService, LoggerService } from '@backstage/backend-plugin-api';
import { Entity, stringifyEntityRef } from '@backstage/catalog-model';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import { AllowedWorkspace, BitbucketProviderSettings } from './config';
import { BitbucketWorkspace, normalizeUuid } from './profile';

/**
 * The annotations of the contract between the org import and the sign-in.
 * The org module declares the same names in
 * plugins/catalog-backend-module-bitbucket-cloud-org/src/transformers.ts:
 * both packages are published on their own, so each keeps its copy.
 */
export const ANNOTATION_WORKSPACE_UUID = 'bitbucket.org/workspace-uuid';
export const ANNOTATION_WORKSPACE_SLUG = 'bitbucket.org/workspace-slug';
export const ANNOTATION_MEMBERS_LISTED_AT = 'bitbucket.org/members-listed-at';
export const ANNOTATION_MEMBER_UUIDS = 'bitbucket.org/member-uuids';
const MANAGED_BY_LOCATION = 'backstage.io/managed-by-location';
const MANAGED_BY_ORIGIN_LOCATION = 'backstage.io/managed-by-origin-location';
/**
 * The location type of the org import's entities. No catalog processor
 * reads it, and the catalog overwrites both managed-by annotations of every
 * entity that comes from a location (a YAML file, a URL): only an entity
 * provider can emit an entity carrying it.
 */
const IMPORT_LOCATION_PREFIX = 'bitbucket-cloud-org:';
/** A listing stamped later than this ahead of our clock is not believed. */
const CLOCK_SKEW_MS = 60 * 1000;
/** How long one catalog answer serves every session of this process. */
export const DEFAULT_GROUPS_REUSE_MS = 5 * 1000;

/** One imported workspace Group, as the workspace check reads it. */
interface ImportedGroup {
  ref: string;
  uuid: string;
  slug?: string;
  listedAt: number;
  members: Set<string>;
}

/**
 * The catalog's answer to the workspace check of one person:
 * - `member`: listed in a fresh imported Group of an allowed workspace;
 * - `refused`: at a refresh, not listed in any, and every allowed workspace
 *   was listed again after the session's last membership decision;
 * - `miss`: the catalog cannot tell; Bitbucket is asked.
 */
export type CatalogAnswer =
  | { kind: 'member'; workspaces: BitbucketWorkspace[] }
  | { kind: 'refused'; reason: string }
  | { kind: 'miss'; reason: string };

/** What the person asks about: their uuid and, at a refresh, the last decision. */
export interface CatalogQuestion {
  uuid: string;
  /** When the session's membership was last decided (refreshes only). */
  decidedAt?: number;
}

/**
 * Answers the workspace check from the workspace Groups that the Bitbucket
 * Cloud org import wrote to the catalog (the contract of issue 19): a Group
 * counts only when both managed-by annotations name the import's location
 * type, it names an allowed workspace, and its listing is younger than
 * `workspaceMembershipCatalogMaxAge`. Only the Group's
 * `bitbucket.org/member-uuids` is read: never Users, never `memberOf`,
 * which any catalog source can write.
 */
export class CatalogMembership {
  readonly #catalog: CatalogService;
  readonly #auth: AuthService;
  readonly #settings: BitbucketProviderSettings;
  readonly #logger?: LoggerService;
  readonly #reuseMs: number;
  #groups?: { at: number; groups: Promise<ImportedGroup[]> };

  constructor(options: {
    catalog: CatalogService;
    auth: AuthService;
    settings: BitbucketProviderSettings;
    logger?: LoggerService;
    /** How long one catalog answer serves all sessions; default 5 s. */
    reuseMs?: number;
  }) {
    this.#catalog = options.catalog;
    this.#auth = options.auth;
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#reuseMs = options.reuseMs ?? DEFAULT_GROUPS_REUSE_MS;
  }

  /** The catalog's answer for one person; never throws (a failure is a miss). */
  async answer(question: CatalogQuestion): Promise<CatalogAnswer> {
    const { allowed, minimumRole } = this.#settings.workspaces;
    if (!allowed) return { kind: 'miss', reason: 'no allowedWorkspaces' };
    if (minimumRole === 'owner') {
      return {
        kind: 'miss',
        reason: "minimumWorkspaceRole 'owner': the import lists no roles",
      };
    }
    let groups: ImportedGroup[];
    try {
      groups = await this.#imported();
    } catch (error) {
      this.#logger?.warn(
        `Bitbucket workspace check: the catalog did not answer (${String(
          (error as Error)?.message ?? error,
        )}); asking Bitbucket instead. Check that the catalog backend runs in this backend or is reachable from it.`,
      );
      return { kind: 'miss', reason: 'catalog unreachable' };
    }
    const now = Date.now();
    const fresh = (g: ImportedGroup) =>
      now - g.listedAt <= this.#settings.catalogMaxAgeMs &&
      g.listedAt <= now + CLOCK_SKEW_MS;
    const perEntry = allowed.map(entry =>
      groups.filter(g => matches(entry, g) && fresh(g)),
    );
    const person = `{${normalizeUuid(question.uuid)}}`;
    const listing = perEntry.flat().filter(g => g.members.has(person));
    if (listing.length > 0) {
      const unique = new Map(listing.map(g => [g.ref, g]));
      return {
        kind: 'member',
        workspaces: [...unique.values()].map(g => ({
          slug: g.slug ?? g.uuid,
          uuid: g.uuid,
          administrator: false,
          permission: 'member',
          group: g.ref,
        })),
      };
    }
    const listed = perEntry
      .flat()
      .map(g => `${g.ref} listed at ${new Date(g.listedAt).toISOString()}`);
    // a collaborator is never listed: only the roles at or above member are
    const canRefuse =
      question.decidedAt !== undefined && minimumRole === 'member';
    if (
      canRefuse &&
      perEntry.every(
        list =>
          list.length > 0 && list.some(g => g.listedAt > question.decidedAt!),
      )
    ) {
      return {
        kind: 'refused',
        reason: `not listed by the org import after the last membership decision at ${new Date(
          question.decidedAt!,
        ).toISOString()} (${listed.join('; ')})`,
      };
    }
    return {
      kind: 'miss',
      reason:
        listed.length === 0
          ? 'no fresh imported Group for the allowed workspaces'
          : `not listed (${listed.join('; ')})`,
    };
  }

  /** The imported Groups of the allowed workspaces, shared for `reuseMs`. */
  #imported(): Promise<ImportedGroup[]> {
    const now = Date.now();
    if (this.#groups && now - this.#groups.at < this.#reuseMs) {
      return this.#groups.groups;
    }
    const groups = this.#fetch();
    this.#groups = { at: now, groups };
    // a failure is not kept for others
    groups.catch(() => {
      if (this.#groups?.groups === groups) this.#groups = undefined;
    });
    return groups;
  }

  async #fetch(): Promise<ImportedGroup[]> {
    const allowed = this.#settings.workspaces.allowed ?? [];
    const uuids = allowed.flatMap(e => (e.kind === 'uuid' ? [e.uuid] : []));
    const slugs = allowed.flatMap(e => (e.kind === 'slug' ? [e.slug] : []));
    const filter: Array<Record<string, string | string[]>> = [];
    if (uuids.length) {
      filter.push({
        kind: 'group',
        [`metadata.annotations.${ANNOTATION_WORKSPACE_UUID}`]: uuids,
      });
    }
    if (slugs.length) {
      filter.push({
        kind: 'group',
        [`metadata.annotations.${ANNOTATION_WORKSPACE_SLUG}`]: slugs,
      });
    }
    const { items } = await this.#catalog.getEntities(
      {
        filter,
        fields: [
          'kind',
          'metadata.name',
          'metadata.namespace',
          'metadata.annotations',
        ],
      },
      { credentials: await this.#auth.getOwnServiceCredentials() },
    );
    return items.flatMap(entity => {
      const group = toImportedGroup(entity);
      return group ? [group] : [];
    });
  }
}

function matches(entry: AllowedWorkspace, group: ImportedGroup): boolean {
  return entry.kind === 'uuid'
    ? normalizeUuid(group.uuid) === normalizeUuid(entry.uuid)
    : group.slug?.toLowerCase() === entry.slug;
}

/**
 * The Group as the import wrote it, or undefined for anything else: an
 * entity of another source (provenance), or one that lacks a part of the
 * contract (no uuid, no listing time).
 */
export function toImportedGroup(entity: Entity): ImportedGroup | undefined {
  const a = entity.metadata.annotations ?? {};
  if (entity.kind.toLowerCase() !== 'group') return undefined;
  if (
    !a[MANAGED_BY_LOCATION]?.startsWith(IMPORT_LOCATION_PREFIX) ||
    !a[MANAGED_BY_ORIGIN_LOCATION]?.startsWith(IMPORT_LOCATION_PREFIX)
  ) {
    return undefined;
  }
  const uuid = a[ANNOTATION_WORKSPACE_UUID];
  const listedAt = Date.parse(a[ANNOTATION_MEMBERS_LISTED_AT] ?? '');
  if (!uuid || !Number.isFinite(listedAt)) return undefined;
  return {
    ref: stringifyEntityRef(entity),
    uuid: `{${normalizeUuid(uuid)}}`,
    slug: a[ANNOTATION_WORKSPACE_SLUG] || undefined,
    listedAt,
    members: new Set(
      (a[ANNOTATION_MEMBER_UUIDS] ?? '')
        .split(',')
        .map(u => u.trim())
        .filter(Boolean)
        .map(u => `{${normalizeUuid(u)}}`),
    ),
  };
}
