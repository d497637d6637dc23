import { request } from 'undici';
import { bitbucketConnections } from './connections';

/** What {@link httpRequest} answers: the status, headers and whole body. */
export interface HttpAnswer {
  status: number;
  /** A 2xx status. */
  ok: boolean;
  /** A response header by its case-insensitive name (the first one). */
  header(name: string): string | undefined;
  text: string;
}

/** Options of {@link httpRequest}. */
export interface HttpRequestOptions {
  method?: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** For the whole exchange, body included. */
  timeoutMs: number;
}

/**
 * One request to Bitbucket with `undici.request`: the same client as Node's
 * `fetch`, without the web streams that made `fetch` cost about four times
 * the CPU per call. It goes through the module's keep-alive pool, which also
 * holds the connections opened ahead (src/connections.ts), or through the
 * global dispatcher when the backend set one (a proxy, with
 * `setGlobalDispatcher`). The timeout covers the body too, and its timer is
 * cleared as soon as the answer is read, so nothing outlives the call.
 *
 * A timeout rejects with an error named `TimeoutError`; a transport failure
 * with undici's error (its `code` says what happened, e.g. `ECONNREFUSED`).
 */
export async function httpRequest(
  url: string,
  options: HttpRequestOptions,
): Promise<HttpAnswer> {
  const controller = new AbortController();
  // the reason AbortSignal.timeout() gives, but with a timer we can clear
  const timer = setTimeout(
    () =>
      controller.abort(
        new DOMException('The operation timed out.', 'TimeoutError'),
      ),
    options.timeoutMs,
  );
  try {
    const res = await request(url, {
      // the pool with the connections opened ahead, or the global dispatcher
      dispatcher: bitbucketConnections().dispatcher(),
      method: options.method ?? 'GET',
      headers: options.headers,
      body: options.body,
      signal: controller.signal,
    });
    const text = await res.body.text();
    const headers = res.headers;
    return {
      status: res.statusCode,
      ok: res.statusCode >= 200 && res.statusCode < 300,
      header(name) {
        const value = headers[name.toLowerCase()];
        return Array.isArray(value) ? value[0] : value;
      },
      text,
    };
  } finally {
    clearTimeout(timer);
  }
}
