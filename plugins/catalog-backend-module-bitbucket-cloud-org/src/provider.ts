import {
  LoggerService,
  SchedulerServiceTaskRunner,
} from '@backstage/backend-plugin-api';
import {
  EntityProvider,
  EntityProviderConnection,
} from '@backstage/plugin-catalog-node';
import { BitbucketCloudOrgClient, WorkspaceMembers } from './client';
import type { ProviderSettings } from './config';
import { buildOrgEntities, OrgTransformers } from './org';
import { ClientCredentialsToken } from './token';

/**
 * Imports the members of the configured Bitbucket Cloud workspaces as User
 * entities and the workspaces as Group entities. Each run replaces all of
 * this provider's entities (a member who left disappears); a run that fails
 * changes nothing, so the catalog keeps the last good import.
 */
export class BitbucketCloudOrgEntityProvider implements EntityProvider {
  readonly #settings: ProviderSettings;
  readonly #logger: LoggerService;
  readonly #taskRunner: SchedulerServiceTaskRunner;
  readonly #transformers: OrgTransformers;
  readonly #token: ClientCredentialsToken;
  #connection?: EntityProviderConnection;

  constructor(options: {
    settings: ProviderSettings;
    logger: LoggerService;
    taskRunner: SchedulerServiceTaskRunner;
    transformers: OrgTransformers;
  }) {
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#taskRunner = options.taskRunner;
    this.#transformers = options.transformers;
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
   * One run: reads every page of members of every workspace, then replaces
   * the provider's entities. Logs the outcome, including what to fix when it
   * fails, and resolves whether the catalog was updated.
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
      const listings: WorkspaceMembers[] = [];
      // one workspace after the other: a failure stops the run at once
      for (const workspace of workspaces) {
        const listing = await client.workspaceMembers(workspace);
        for (const skipped of listing.skipped) {
          this.#logger.warn(
            `${said} left out ${skipped} of workspace '${listing.workspace.slug}'.`,
          );
        }
        listings.push(listing);
      }
      const { users, groups } = await buildOrgEntities({
        listings,
        transformers: this.#transformers,
        ctx: { providerId: id, logger: this.#logger },
        baseUrl,
      });
      await connection.applyMutation({
        type: 'full',
        entities: [...groups, ...users].map(entity => ({
          entity,
          locationKey: `bitbucket-cloud-org-provider:${id}`,
        })),
      });
      const grants = this.#token.grants - grantsBefore;
      this.#logger.info(
        `${said} imported ${count(users.length, 'user')} and ${count(
          groups.length,
          'group',
        )} from the workspaces ${listings
          .map(l => l.workspace.slug)
          .join(', ')} (${client.calls} REST calls${
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
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
