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
           * Workspace slugs whose members may sign in (case-insensitive).
           * Needs the consumer permission Workspace membership: Read.
           */
          allowedWorkspaces?: string[];
          /** The least role required in one of the allowed workspaces. */
          minimumWorkspaceRole?: 'collaborator' | 'member' | 'owner';
          /** Adds `group:<namespace>/<prefix><slug>` ownership per workspace. */
          workspaceOwnership?: {
            enabled?: boolean;
            /** Default `default`. */
            namespace?: string;
            /** Default empty. */
            prefix?: string;
          };
          /**
           * How long a fetched profile serves refreshes without REST calls,
           * e.g. `15m`; `0` disables. Default 15 minutes.
           */
          profileCacheTtl?: HumanDuration | string | number;
          /**
           * How long the connections that `/start` opens ahead of the
           * callback (TCP and TLS, no request) wait for it, e.g. `2m`; `0`
           * opens none. Default 2 minutes.
           */
          preconnectHoldTime?: HumanDuration | string | number;
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
                  allowedDomains?: string[];
                  dangerouslyAllowSignInWithoutUserInCatalog?: boolean;
                }
            >;
          };
        };
      };
    };
  };
}
