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
 * Sends every `https` request for bitbucket.org and api.bitbucket.org to
 * another address instead (the bench's relays to the HTTPS emulator), still
 * over TLS with the original name: the same SNI, the same certificate check
 * against that name, the same `Host` header, path and headers, and the same
 * agent, whose keep-alive pool is keyed by that name. For the upstream
 * module, whose URLs cannot be configured; it only works because node-oauth
 * looks `https.request` up on the module object at call time. Nothing else
 * is rerouted.
 */
export function rerouteBitbucketHosts(
  targets: Record<string, { host: string; port: number }>,
): void {
  for (const method of ['request', 'get'] as const) {
    const original = https[method] as (
      ...args: unknown[]
    ) => http.ClientRequest;
    const rerouted = (...args: RequestArgs): http.ClientRequest => {
      const [options, callback] = normalise(args);
      const host = hostOf(options);
      const target = host ? targets[host] : undefined;
      if (!host || !target) {
        return original.apply(https, args);
      }
      const headers = { ...(options.headers as Record<string, string>) };
      if (!Object.keys(headers).some(h => h.toLowerCase() === 'host')) {
        headers.Host = host;
      }
      const moved: https.RequestOptions = {
        ...(options as https.RequestOptions),
        protocol: 'https:',
        host: target.host,
        hostname: target.host,
        port: target.port,
        servername: host,
        headers,
      };
      return callback
        ? original.call(https, moved, callback)
        : original.call(https, moved);
    };
    (https as unknown as Record<string, unknown>)[method] = rerouted;
  }
}
