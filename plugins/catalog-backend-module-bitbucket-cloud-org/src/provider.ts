import {
  AuthService,
  LoggerService,
  SchedulerServiceTaskRunner,
} from '@backstage/backend-plugin-api';
import { DEFAULT_NAMESPACE } from '@backstage/catalog-model';
import {
  CatalogService,
  EntityProvider,
  EntityProviderConnection,
} from '@backstage/plugin-catalog-node';
import { CatalogView, readCatalogView } from './catalogView';
import { BitbucketCloudOrgClient, WorkspaceMembers } from './client';
import type { ProviderSettings } from './config';
import { canonicalUuid } from './contract';
import { WorkspaceListingError } from './errors';
import { checkMemberDrop } from './guards';
import { buildOrgEntities, GroupName, OrgTransformers } from './org';
import { ClientCredentialsToken } from './token';
import { WORKSPACE_UUID_ANNOTATION } from './transformers';

/** A workspace's last applied listing and the Group name it was applied under. */
interface Applied {
  listing: WorkspaceMembers;
  group?: GroupName;
}

/**
 * Imports the members of the configured Bitbucket Cloud workspaces as User
 * entities and the workspaces as Group entities. Each run replaces all of
 * this provider's entities (a member who left disappears). A workspace whose
 * listing is refused keeps its last good listing while the others are
 * applied; a run that fails as a whole (token, network, rate limit, catalog)
 * changes nothing.
 */
export class BitbucketCloudOrgEntityProvider implements EntityProvider {
  readonly #settings: ProviderSettings;
  readonly #logger: LoggerService;
  readonly #taskRunner: SchedulerServiceTaskRunner;
  readonly #transformers: OrgTransformers;
  readonly #catalog: Pick<CatalogService, 'getEntities'>;
  readonly #auth: AuthService;
  readonly #token: ClientCredentialsToken;
  /** By canonical workspace uuid. */
  readonly #applied = new Map<string, Applied>();
  /** Each configured workspace entry's canonical uuid, once listed. */
  readonly #uuidOf = new Map<string, string>();
  #connection?: EntityProviderConnection;

  constructor(options: {
    settings: ProviderSettings;
    logger: LoggerService;
    taskRunner: SchedulerServiceTaskRunner;
    transformers: OrgTransformers;
    /** Finds the Users of other sources and this provider's Groups. */
    catalog: Pick<CatalogService, 'getEntities'>;
    auth: AuthService;
  }) {
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#taskRunner = options.taskRunner;
    this.#transformers = options.transformers;
    this.#catalog = options.catalog;
    this.#auth = options.auth;
    this.#token = new ClientCredentialsToken(options.settings);
  }

  getProviderName(): string {
    return `BitbucketCloudOrgEntityProvider:${this.#settings.id}`;
  }

  async connect(connection: EntityProviderConnection): Promise<void> {
    this.#connection = connection;
    await this.#taskRunner.run({
      id: `${this.getProviderName()}:refresh`,
      fn: async () => {
        await this.refresh();
      },
    });
  }

  /**
   * One run: lists every configured workspace, keeps the last good listing
   * of each workspace whose listing is refused, then replaces the provider's
   * entities. Logs the outcome and what to do about each refusal, and
   * resolves whether the catalog was updated.
   */
  async refresh(): Promise<boolean> {
    const connection = this.#connection;
    if (!connection) {
      throw new Error(
        `${this.getProviderName()} is not connected to the catalog yet`,
      );
    }
    const { id, workspaces, baseUrl } = this.#settings;
    const started = Date.now();
    const grantsBefore = this.#token.grants;
    const client = new BitbucketCloudOrgClient(this.#settings, this.#token);
    const said = `Bitbucket Cloud org provider '${id}'`;
    try {
      let view: CatalogView;
      try {
        view = await this.#readCatalog();
      } catch (error) {
        throw new Error(
          `could not read the catalog's Users and this provider's Groups (${
            (error as Error)?.message ?? String(error)
          }), which it needs to leave other sources' Users alone and to keep group names.`,
        );
      }

      // in the configured order, fresh and kept alike
      const listings: WorkspaceMembers[] = [];
      const fresh: WorkspaceMembers[] = [];
      const kept: WorkspaceMembers[] = [];
      // one workspace after the other: a run-wide failure stops at once
      for (const workspace of workspaces) {
        try {
          const listing = await client.workspaceMembers(workspace);
          const uuid = canonicalUuid(listing.workspace.uuid)!;
          this.#uuidOf.set(workspace, uuid);
          checkMemberDrop(this.#settings, listing, this.#lastUuids(uuid, view));
          fresh.push(listing);
          listings.push(listing);
        } catch (error) {
          if (!(error instanceof WorkspaceListingError)) throw error;
          const last = this.#lastApplied(workspace, view);
          if (last) {
            kept.push(last.listing);
            listings.push(last.listing);
          }
          this.#logger.error(
            `${said} did not apply the listing of workspace '${workspace}': ${
              error.message
            } ${
              last
                ? `Its Group keeps the members listed at ${last.listing.listedAt}; the other workspaces are applied.`
                : 'It has no earlier listing, so it has no Group yet; the other workspaces are applied.'
            }`,
          );
        }
      }
      if (fresh.length === 0) {
        this.#logger.error(
          `${said} did not update the catalog: no workspace's listing could be applied (see above). The catalog keeps the users and groups of the last successful run.`,
        );
        return false;
      }

      const groupNames = this.#groupNames(listings, view);
      const { users, groups, leftToOthers } = await buildOrgEntities({
        listings,
        transformers: this.#transformers,
        ctx: { providerId: id, logger: this.#logger },
        baseUrl,
        claimed: view.claimed,
        groupNames,
      });
      if (leftToOthers.length) {
        this.#logger.warn(
          `${said} wrote no User for ${count(
            leftToOthers.length,
            'account',
          )} that a User of another source already claims (same bitbucket.org/user-id): ${leftToOthers
            .map(l => `${l.uuid} (${l.ref})`)
            .join(
              ', ',
            )}. They stay in their workspace Groups' member uuids and sign in as those Users; to let this provider manage them, remove those Users from their source.`,
        );
      }
      await connection.applyMutation({
        type: 'full',
        entities: [...groups, ...users].map(entity => ({
          entity,
          // unchanged since the first release: a new key would make the
          // catalog refuse the entities it already holds under the old one
          locationKey: `bitbucket-cloud-org-provider:${id}`,
        })),
      });
      for (const listing of listings) {
        const uuid = canonicalUuid(listing.workspace.uuid)!;
        const group = groups.find(
          g =>
            canonicalUuid(
              g.metadata.annotations?.[WORKSPACE_UUID_ANNOTATION] ?? '',
            ) === uuid,
        );
        this.#applied.set(uuid, {
          listing,
          group: group && {
            name: group.metadata.name,
            namespace: group.metadata.namespace ?? DEFAULT_NAMESPACE,
          },
        });
      }

      const grants = this.#token.grants - grantsBefore;
      const collaborators = fresh.reduce((n, l) => n + l.collaborators, 0);
      this.#logger.info(
        `${said} imported ${count(users.length, 'user')} and ${count(
          groups.length,
          'group',
        )} from the workspaces ${listings
          .map(
            l =>
              `${l.workspace.slug}${
                kept.includes(l) ? ` (kept from ${l.listedAt})` : ''
              }`,
          )
          .join(', ')}${
          collaborators
            ? `, leaving out ${count(collaborators, 'collaborator')}`
            : ''
        } (${client.calls} REST calls${
          grants ? `, ${grants} token grant${grants > 1 ? 's' : ''}` : ''
        }, ${Date.now() - started} ms).`,
      );
      return true;
    } catch (error) {
      this.#logger.error(
        `${said} did not update the catalog: ${
          (error as Error)?.message ?? String(error)
        } The catalog keeps the users and groups of the last successful run.`,
      );
      return false;
    }
  }

  /**
   * The catalog's view, asked again twice, 2 s apart, when it fails: at
   * start-up the first run can come before the catalog's API answers.
   */
  async #readCatalog(): Promise<CatalogView> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await readCatalogView({
          catalog: this.#catalog,
          auth: this.#auth,
          providerId: this.#settings.id,
          baseUrl: this.#settings.baseUrl,
        });
      } catch (error) {
        if (attempt >= 3) throw error;
        await new Promise(resolve => setTimeout(resolve, 2000));
      }
    }
  }

  /** The uuids of the workspace's last applied listing: this run's memory, else the catalog's Group. */
  #lastUuids(
    uuid: string,
    view: CatalogView,
  ): { uuids: string[]; listedAt: string } | undefined {
    const listing =
      this.#applied.get(uuid)?.listing ?? view.groups.get(uuid)?.listing;
    return (
      listing && {
        uuids: listing.members.map(m => canonicalUuid(m.uuid)!),
        listedAt: listing.listedAt,
      }
    );
  }

  /** The last applied listing of a configured workspace (a slug or a uuid). */
  #lastApplied(workspace: string, view: CatalogView): Applied | undefined {
    const uuid =
      this.#uuidOf.get(workspace) ??
      canonicalUuid(workspace) ??
      [...view.groups.entries()].find(
        ([, g]) => g.listing.workspace.slug.toLowerCase() === workspace,
      )?.[0];
    if (!uuid) return undefined;
    const inMemory = this.#applied.get(uuid);
    if (inMemory) return inMemory;
    const emitted = view.groups.get(uuid);
    return (
      emitted && {
        listing: emitted.listing,
        group: { name: emitted.name, namespace: emitted.namespace },
      }
    );
  }

  /**
   * Each workspace's Group name: the configured `group`, else the name this
   * provider already gave the workspace's Group (in memory, else in the
   * catalog), so that a slug renamed in Bitbucket does not rename the Group.
   * A workspace never imported before gets the group transformer's name.
   */
  #groupNames(
    listings: WorkspaceMembers[],
    view: CatalogView,
  ): Map<string, GroupName> {
    const names = new Map<string, GroupName>();
    const { groups: configured, workspaces } = this.#settings;
    for (const listing of listings) {
      const uuid = canonicalUuid(listing.workspace.uuid)!;
      const entry = workspaces.find(
        w =>
          w === uuid ||
          this.#uuidOf.get(w) === uuid ||
          w === listing.workspace.slug.toLowerCase(),
      );
      const fromConfig = entry ? configured[entry] : undefined;
      const pinned =
        this.#applied.get(uuid)?.group ??
        (view.groups.has(uuid)
          ? {
              name: view.groups.get(uuid)!.name,
              namespace: view.groups.get(uuid)!.namespace,
            }
          : undefined);
      if (fromConfig) names.set(uuid, { name: fromConfig });
      else if (pinned) names.set(uuid, pinned);
    }
    return names;
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
