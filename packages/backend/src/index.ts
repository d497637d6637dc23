/*
 * The demo portal's backend: the stock Backstage backend plus the
 * `bitbucket` sign-in provider from plugins/auth-backend-module-bitbucket-provider.
 */

import { createBackend } from '@backstage/backend-defaults';
import {
  RootHttpRouterConfigureContext,
  rootHttpRouterServiceFactory,
} from '@backstage/backend-defaults/rootHttpRouter';

// Backstage's request log writes every URL at info level, and the OAuth
// callback's carries the one-time code: keep these values out of it.
const SECRET_QUERY_PARAMS =
  /([?&](?:code|state|access_token|refresh_token|id_token|client_secret)=)[^&#]*/gi;

const redactUrl = (url: string) =>
  url.replace(SECRET_QUERY_PARAMS, '$1REDACTED');

/** The request as the request log sees it: URLs and Referer redacted. */
function forRequestLog<
  R extends { originalUrl: string; url: string; headers: object },
>(req: R): R {
  return Object.create(req, {
    originalUrl: { get: () => redactUrl(req.originalUrl) },
    url: { get: () => redactUrl(req.url) },
    headers: {
      get: () => {
        const headers = { ...req.headers } as Record<string, unknown>;
        for (const name of ['referer', 'referrer']) {
          const value = headers[name];
          if (typeof value === 'string') headers[name] = redactUrl(value);
        }
        return headers;
      },
    },
  });
}

/** `rootHttpRouterServiceFactory({ configure: redactRequestLog })` */
function redactRequestLog({
  middleware,
  applyDefaults,
}: RootHttpRouterConfigureContext) {
  const requestLog = middleware.logging.bind(middleware);
  middleware.logging = () => {
    const log = requestLog();
    return (req, res, next) => log(forRequestLog(req), res, next);
  };
  applyDefaults();
}

const backend = createBackend();

// the stock root HTTP router, with the request log redacted (docs/security.md)
backend.add(rootHttpRouterServiceFactory({ configure: redactRequestLog }));

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
