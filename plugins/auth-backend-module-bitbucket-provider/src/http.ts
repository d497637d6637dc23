import { request } from 'undici';
import { bitbucketConnections } from './connections';

/**
 * The most this module reads of one answer: a page of 100 emails or
 * workspaces is about 50 KiB. A larger body is dropped unread.
 */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** An answer whose body is larger than {@link MAX_RESPONSE_BYTES}. */
export class ResponseTooLargeError extends Error {
  readonly name = 'ResponseTooLargeError';
}

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
    const headers = res.headers;
    const text = await readCapped(res.body, headers['content-length']);
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

/** The body as text, or a {@link ResponseTooLargeError} past the cap (read no further). */
async function readCapped(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  contentLength: string | string[] | undefined,
): Promise<string> {
  const tooLarge = () => {
    body.destroy();
    return new ResponseTooLargeError(
      `the answer is larger than ${MAX_RESPONSE_BYTES} bytes`,
    );
  };
  if (Number(contentLength) > MAX_RESPONSE_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
