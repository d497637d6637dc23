import { RootHttpRouterConfigureContext } from '@backstage/backend-defaults/rootHttpRouter';

/*
 * The recipe of docs/security.md ("Redact the request log"), verbatim as
 * packages/backend/src/index.ts uses it, so that secrets.test.ts proves the
 * code users copy. Keep the three in step.
 */

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
export function redactRequestLog({
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
