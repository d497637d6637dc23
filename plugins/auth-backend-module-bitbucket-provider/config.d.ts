import { HumanDuration } from '@backstage/types';

export interface Config {
  auth?: {
    providers?: {
      /**
       * Sign-in with Bitbucket Cloud, one block per environment
       * (`development`, `production`, …).
       * @visibility frontend
       */
      bitbucket?: {
        [authEnv: string]: {
          /** The Key of the Bitbucket OAuth consumer. */
          clientId: string;
          /**
           * The Secret of the Bitbucket OAuth consumer.
           * @visibility secret
           */
          clientSecret: string;
          /**
           * Where Bitbucket sends the user back; defaults to
           * `<backend>/api/auth/bitbucket/handler/frame`. The consumer's
           * callback URL must be a prefix of it.
           */
          callbackUrl?: string;
          /** Scopes to request besides `account` and `email`. */
          additionalScopes?: string | string[];
          /** How long a sign-in lasts before the user must sign in again. */
          sessionDuration?: HumanDuration | string;
          /**
           * Bitbucket's web host, for the authorize and token endpoints.
           * Default `https://bitbucket.org`; plain http only for loopback.
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
           * Milliseconds for all the Bitbucket calls of one sign-in,
           * refresh or logout's revocation together (pages and a 429's wait
           * included). Default 30000.
           */
          signInTimeout?: number;
          /**
           * Workspaces whose members may sign in: braced uuids such as
           * `'{0e6a3d1f-…}'` (recommended: they survive renames) or slugs
           * (case-insensitive). Needs the consumer permission Workspace
           * membership: Read.
           */
          allowedWorkspaces?: string[];
          /**
           * The least role required in one of the allowed workspaces.
           * Default `member`: repository collaborators are refused.
           */
          minimumWorkspaceRole?: 'collaborator' | 'member' | 'owner';
          /**
           * Adds `group:<namespace>/<prefix><slug>` ownership for each
           * allowed workspace where the user is at least a member. Needs
           * `allowedWorkspaces`.
           */
          workspaceOwnership?: {
            enabled?: boolean;
            /** Default `default`. */
            namespace?: string;
            /** Default empty. */
            prefix?: string;
          };
          /**
           * How long a refresh trusts the last workspace check made at
           * Bitbucket, e.g. `30m`; `0` turns the profile cache off. Default
           * 30 minutes.
           */
          profileCacheTtl?: HumanDuration | string | number;
          /**
           * How long a refresh trusts the last `/2.0/user` and
           * `/2.0/user/emails`, e.g. `8h`; at least `profileCacheTtl`.
           * Default 8 hours.
           */
          identityCacheTtl?: HumanDuration | string | number;
          /**
           * How long a rotated refresh token still gets the session it
           * rotated to (concurrent tabs, replicas, lost answers), e.g. `60s`;
           * `0` turns it off; at most 10 minutes. Default 60 seconds.
           */
          refreshGracePeriod?: HumanDuration | string | number;
          /**
           * Sign-ins of one account per hour before its next ones reuse its
           * profile after `GET /2.0/user`; `0` turns the bound off. Default 5.
           */
          accountSignInsPerHour?: number;
          /**
           * How long the connections that `/start` opens ahead of the
           * callback (TCP and TLS, no request) wait for it, e.g. `2m`; `0`
           * opens none. Default 2 minutes.
           */
          preconnectHoldTime?: HumanDuration | string | number;
          /**
           * Where the workspace check of `allowedWorkspaces` looks first.
           * `catalog` (default): the workspace Groups that the Bitbucket
           * Cloud org import (catalog-backend-module-bitbucket-cloud-org)
           * wrote, Bitbucket on a miss; `bitbucket`: Bitbucket only.
           */
          workspaceMembershipSource?: 'catalog' | 'bitbucket';
          /**
           * The oldest import listing (`bitbucket.org/members-listed-at`)
           * the catalog answer uses, from 1 minute to 24 hours; an older
           * one sends the check to Bitbucket. Default 1 hour.
           */
          workspaceMembershipCatalogMaxAge?: HumanDuration | string;
          /** Sign-in resolvers, tried in order. */
          signIn?: {
            resolvers: Array<
              | {
                  resolver: 'userIdMatchingUserEntityAnnotation';
                  dangerouslyAllowSignInWithoutUserInCatalog?: boolean;
                }
              | {
                  resolver: 'accountIdMatchingUserEntityAnnotation';
                  dangerouslyAllowSignInWithoutUserInCatalog?: boolean;
                }
              | {
                  resolver: 'usernameMatchingUserEntityAnnotation';
                  dangerouslyAllowSignInWithoutUserInCatalog?: boolean;
                }
              | {
                  resolver: 'emailMatchingUserEntityProfileEmail';
                  allowedDomains?: string[];
                  dangerouslyAllowSignInWithoutUserInCatalog?: boolean;
                }
              | {
                  resolver: 'emailLocalPartMatchingUserEntityName';
                  /** Required: the email domains your organisation owns. */
                  allowedDomains: string[];
                  dangerouslyAllowSignInWithoutUserInCatalog?: boolean;
                }
            >;
          };
        };
      };
    };
  };
}
