/*
 * The demo portal's backend: the stock Backstage backend plus the
 * `bitbucket` sign-in provider from plugins/auth-backend-module-bitbucket-provider
 * and the Bitbucket Cloud org provider from
 * plugins/catalog-backend-module-bitbucket-cloud-org (active only with a
 * catalog.providers.bitbucketCloudOrg block, as in app-config.emulator.yaml).
 */

import { createBackend } from '@backstage/backend-defaults';
import { rootHttpRouterServiceFactory } from '@backstage/backend-defaults/rootHttpRouter';
import { redactOAuthRequestLog } from '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider';

const backend = createBackend();

// the stock root HTTP router, with the request log redacted (docs/security.md)
backend.add(rootHttpRouterServiceFactory({ configure: redactOAuthRequestLog }));

backend.add(import('@backstage/plugin-app-backend'));
backend.add(import('@backstage/plugin-proxy-backend'));

// scaffolder plugin
backend.add(import('@backstage/plugin-scaffolder-backend'));
backend.add(
  import('@backstage/plugin-scaffolder-backend-module-notifications'),
);

// techdocs plugin
backend.add(import('@backstage/plugin-techdocs-backend'));

// auth plugin, with Bitbucket Cloud sign-in
backend.add(import('@backstage/plugin-auth-backend'));
backend.add(
  import(
    '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider'
  ),
);

// catalog plugin
backend.add(import('@backstage/plugin-catalog-backend'));
backend.add(
  import('@backstage/plugin-catalog-backend-module-scaffolder-entity-model'),
);
backend.add(import('@backstage/plugin-catalog-backend-module-logs'));
// Bitbucket Cloud workspace members as Users, workspaces as Groups
backend.add(
  import(
    '@bitbucket-signin/backstage-plugin-catalog-backend-module-bitbucket-cloud-org'
  ),
);

// permission plugin
backend.add(import('@backstage/plugin-permission-backend'));
backend.add(
  import('@backstage/plugin-permission-backend-module-allow-all-policy'),
);

// search plugin
backend.add(import('@backstage/plugin-search-backend'));
backend.add(import('@backstage/plugin-search-backend-module-catalog'));
backend.add(import('@backstage/plugin-search-backend-module-techdocs'));

// user settings plugin
backend.add(import('@backstage/plugin-user-settings-backend'));

// notifications and signals plugins
backend.add(import('@backstage/plugin-notifications-backend'));
backend.add(import('@backstage/plugin-signals-backend'));

backend.start();
