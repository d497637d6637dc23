import http from 'node:http';
import https from 'node:https';

/** The hosts the upstream module (passport-bitbucket-oauth2) hard-codes. */
export const BITBUCKET_HOSTS = ['bitbucket.org', 'api.bitbucket.org'];

type RequestArgs = [unknown, unknown?, unknown?];

function hostOf(options: Record<string, unknown>): string | undefined {
  const raw = (options.hostname ?? options.host) as string | undefined;
  return raw?.replace(/:\d+$/, '').toLowerCase();
}

/** Normalises the three `https.request` signatures to `[options, callback]`. */
function normalise(args: RequestArgs): [Record<string, unknown>, unknown] {
  const [first, second, third] = args;
  if (typeof first === 'string' || first instanceof URL) {
    const url = new URL(String(first));
    const fromUrl: Record<string, unknown> = {
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
    };
    if (typeof second === 'function') return [fromUrl, second];
    return [{ ...fromUrl, ...(second as object) }, third];
  }
  return [{ ...(first as object) }, second];
}

/**
 * Sends every `https` request for bitbucket.org and api.bitbucket.org over
 * plain http to the emulator instead, keeping the path, the headers and the
 * original `Host` header. For the upstream module, whose URLs cannot be
 * configured; it only works because node-oauth looks `https.request` up on
 * the module object at call time. Nothing else is rerouted.
 */
export function rerouteBitbucketHosts(target: {
  host: string;
  port: number;
}): void {
  const hosts = new Set(BITBUCKET_HOSTS);
  for (const method of ['request', 'get'] as const) {
    const original = https[method] as (
      ...args: unknown[]
    ) => http.ClientRequest;
    const rerouted = (...args: RequestArgs): http.ClientRequest => {
      const [options, callback] = normalise(args);
      const host = hostOf(options);
      if (!host || !hosts.has(host)) {
        return original.apply(https, args);
      }
      const headers = { ...(options.headers as Record<string, string>) };
      if (!Object.keys(headers).some(h => h.toLowerCase() === 'host')) {
        headers.Host = host;
      }
      const plain: http.RequestOptions = {
        ...(options as http.RequestOptions),
        protocol: 'http:',
        host: target.host,
        hostname: target.host,
        port: target.port,
        headers,
        agent: undefined, // an https.Agent cannot carry plain http
      };
      return callback
        ? http[method](plain, callback as (res: http.IncomingMessage) => void)
        : http[method](plain);
    };
    (https as unknown as Record<string, unknown>)[method] = rerouted;
  }
}
