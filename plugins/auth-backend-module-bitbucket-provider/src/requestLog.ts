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

/**
 * The part of `RootHttpRouterConfigureContext`
 * (`@backstage/backend-defaults/rootHttpRouter`) that
 * {@link redactOAuthRequestLog} uses; declared here so that this module does
 * not depend on `@backstage/backend-defaults`.
 *
 * @public
 */
export interface RequestLogConfigureContext {
  /** Backstage's middleware factory; its `logging` is wrapped. */
  middleware: {
    /** Backstage's request-log middleware factory. */
    logging(): (req: any, res: any, next: any) => void;
  };
  /** Builds Backstage's default middleware chain (called once, at the end). */
  applyDefaults(): void;
}

/**
 * A `configure` for `rootHttpRouterServiceFactory` that keeps OAuth codes,
 * states and tokens out of Backstage's request log: the request log sees
 * the URL and Referer with `code`, `state`, `access_token`, `refresh_token`,
 * `id_token` and `client_secret` replaced by `REDACTED`. Everything else is
 * Backstage's default (`applyDefaults()`: the whole middleware chain and the
 * log format).
 *
 * @example
 * ```ts
 * backend.add(rootHttpRouterServiceFactory({ configure: redactOAuthRequestLog }));
 * ```
 *
 * @public
 */
export function redactOAuthRequestLog(
  context: RequestLogConfigureContext,
): void {
  const { middleware, applyDefaults } = context;
  const requestLog = middleware.logging.bind(middleware);
  middleware.logging = () => {
    const log = requestLog();
    return (req, res, next) => log(forRequestLog(req), res, next);
  };
  applyDefaults();
}
