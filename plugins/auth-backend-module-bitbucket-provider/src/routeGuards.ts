import { InputError, NotAllowedError } from '@backstage/errors';
import { AuthProviderRouteHandlers } from '@backstage/plugin-auth-node';
import type { Request } from 'express';

/** The query parameters auth-node and passport-oauth2 read as strings. */
const STRING_PARAMS = [
  'env',
  'state',
  'origin',
  'redirectUrl',
  'flow',
  'scope',
  'code',
  'error',
  'error_description',
  'error_uri',
];

/**
 * Express's extended query parser turns `?env[toString]=1` into an object,
 * on which auth-node calls `.toString()`: an HTTP 500. Each parameter of the
 * flow must be one plain value.
 */
function checkQuery(req: Request): void {
  for (const key of STRING_PARAMS) {
    const value = req.query[key];
    if (value !== undefined && typeof value !== 'string') {
      throw new InputError(
        `Invalid query parameter: '${key}' must be given once, as a plain value.`,
      );
    }
  }
}

/**
 * auth-node builds the cookie options of /refresh and /logout from the
 * Origin header, and `new URL()` of an empty or garbled one throws: an HTTP
 * 500 on /logout (which checks only a non-empty Origin).
 */
function checkOriginHeader(
  req: Request,
  isOriginAllowed: (origin: string) => boolean,
  { mustBeAllowed }: { mustBeAllowed: boolean },
): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let parsed = false;
  try {
    parsed = Boolean(new URL(origin));
  } catch {
    // refused below
  }
  if (!parsed || (mustBeAllowed && !isOriginAllowed(origin))) {
    throw new NotAllowedError(`Origin '${origin}' is not allowed`);
  }
}

/**
 * The redirect flow sends the browser to the state's `redirectUrl`, which
 * auth-node takes unchecked from the query of /start, and from a state that
 * anyone can write on /handler/frame, even without the nonce cookie (the
 * error redirect): an open redirect, and an HTTP 500 when it is no URL.
 * And /handler/frame posts its error message to the state's `origin` before
 * it checks it. Both must be http(s) URLs on an allowed app origin.
 */
function checkAppUrls(
  key: 'origin' | 'redirectUrl',
  urls: string[],
  isOriginAllowed: (origin: string) => boolean,
): void {
  for (const raw of urls) {
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      // refused below
    }
    const web = url?.protocol === 'https:' || url?.protocol === 'http:';
    if (key === 'origin') {
      // auth-node's own wording
      if (!url)
        throw new NotAllowedError('App origin is invalid, failed to parse');
      if (!web || !isOriginAllowed(url.origin)) {
        throw new NotAllowedError(`Origin '${url.origin}' is not allowed`);
      }
    } else if (!url || !web || !isOriginAllowed(url.origin)) {
      throw new NotAllowedError(
        `Redirect URL is not allowed: it must be an http(s) URL on the app's origin${
          url ? `, not '${url.origin}'` : ''
        }.`,
      );
    }
  }
}

/** Every value of `key` in an OAuth state (hex of a query string), as auth-node decodes it. */
function stateValues(state: string | undefined, key: string): string[] {
  if (!state) return [];
  return new URLSearchParams(
    Buffer.from(state, 'hex').toString('utf-8'),
  ).getAll(key);
}

/**
 * auth-node's OAuth route handlers, refusing with a 4xx the hostile input
 * they would answer with an HTTP 500, an open redirect or a message to a
 * foreign origin.
 */
export function guardRouteHandlers(
  handlers: AuthProviderRouteHandlers,
  isOriginAllowed: (origin: string) => boolean,
): AuthProviderRouteHandlers {
  return {
    async start(req, res) {
      checkQuery(req);
      const redirectUrl = req.query.redirectUrl as string | undefined;
      checkAppUrls(
        'redirectUrl',
        redirectUrl === undefined ? [] : [redirectUrl],
        isOriginAllowed,
      );
      await handlers.start(req, res);
    },
    async frameHandler(req, res) {
      checkQuery(req);
      const state = req.query.state as string | undefined;
      for (const key of ['origin', 'redirectUrl'] as const) {
        checkAppUrls(key, stateValues(state, key), isOriginAllowed);
      }
      await handlers.frameHandler(req, res);
    },
    async refresh(req, res) {
      checkQuery(req);
      checkOriginHeader(req, isOriginAllowed, { mustBeAllowed: false });
      await handlers.refresh?.(req, res);
    },
    async logout(req, res) {
      checkQuery(req);
      checkOriginHeader(req, isOriginAllowed, { mustBeAllowed: true });
      await handlers.logout?.(req, res);
    },
  };
}
