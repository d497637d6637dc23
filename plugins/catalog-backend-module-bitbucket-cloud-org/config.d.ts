import { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

export interface Config {
  catalog?: {
    providers?: {
      /**
       * Bitbucket Cloud workspace members as User entities and workspaces as
       * Group entities, one block per provider id.
       */
      bitbucketCloudOrg?: {
        [providerId: string]: {
          /**
           * The workspaces whose members to import, by slug (the part after
           * bitbucket.org/ in the workspace's URL) or by '{uuid}' (which
           * survives a slug rename), each optionally with the name of its
           * Group: `{ workspace: '{uuid}', group: acme }`.
           */
          workspaces: Array<
            | string
            | {
                /** The workspace's slug or '{uuid}'. */
                workspace: string;
                /** The name of the workspace's Group, whatever its slug. */
                group?: string;
              }
          >;
          /**
           * The Key of an OAuth consumer with "Workspace membership: Read".
           * Without clientId and clientSecret, those of
           * integrations.bitbucketCloud are used.
           */
          clientId?: string;
          /**
           * The Secret of that OAuth consumer.
           * @visibility secret
           */
          clientSecret?: string;
          /**
           * Bitbucket's web host, for the token endpoint. Default
           * `https://bitbucket.org`; plain http only for loopback.
           */
          baseUrl?: string;
          /**
           * Bitbucket's REST API base. Default `https://api.bitbucket.org/2.0`;
           * plain http only for loopback.
           */
          apiBaseUrl?: string;
          /** Milliseconds before a call to Bitbucket is abandoned. Default 10000. */
          requestTimeout?: number;
          /**
           * When to import. Default every 30 minutes, 3 minutes at most per
           * run, the first 15 seconds after start-up.
           */
          schedule?: SchedulerServiceTaskScheduleDefinitionConfig;
          /**
           * A workspace's listing that lost more than `maxShare` (default
           * 0.1) of the last applied listing's members, and at least
           * `minCount` (default 2) of them, is not applied. Raise `maxShare`
           * (1 accepts any drop) for one run to accept a real big drop.
           */
          memberDrop?: {
            maxShare?: number;
            minCount?: number;
          };
        };
      };
    };
  };
}
