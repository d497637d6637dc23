import type { Agent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request as httpSend } from 'node:http';
import { request as httpsSend } from 'node:https';
import { request as dispatcherSend } from 'undici';
import { BitbucketConnections, bitbucketConnections } from './connections';

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

const timeoutError = () =>
  // the error AbortSignal.timeout() gives
  new DOMException('The operation timed out.', 'TimeoutError');

/**
 * One request to Bitbucket, through the module's keep-alive pool, which
 * also holds the connections opened ahead (src/connections.ts), with Node's
 * HTTP client; or through the global dispatcher when the backend set one (a
 * proxy, with `setGlobalDispatcher`), with `undici.request`. The timeout
 * covers the body too, and its timer is cleared as soon as the answer is
 * read, so nothing outlives the call.
 *
 * A timeout rejects with an error named `TimeoutError`; a transport failure
 * with the client's error (its `code` says what happened, e.g. `ECONNREFUSED`).
 */
export async function httpRequest(
  url: string,
  options: HttpRequestOptions,
  connections: BitbucketConnections = bitbucketConnections(),
): Promise<HttpAnswer> {
  const target = new URL(url);
  const agent = connections.agentFor(target);
  return agent
    ? sendWithAgent(target, options, agent)
    : sendWithDispatcher(url, options);
}

function sendWithAgent(
  target: URL,
  options: HttpRequestOptions,
  agent: Agent,
): Promise<HttpAnswer> {
  return new Promise<HttpAnswer>((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) {
      headers['content-length'] = String(Buffer.byteLength(options.body));
    }
    const send = target.protocol === 'https:' ? httpsSend : httpSend;
    const req = send(target, {
      agent,
      method: options.method ?? 'GET',
      headers,
    });
    let settled = false;
    let timer: NodeJS.Timeout | undefined = undefined;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(error);
    };
    timer = setTimeout(() => fail(timeoutError()), options.timeoutMs);
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      res.on('error', fail);
      readCapped(res, res.headers['content-length']).then(text => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(answer(res.statusCode ?? 0, res.headers, text));
      }, fail);
    });
    req.end(options.body);
  });
}

async function sendWithDispatcher(
  url: string,
  options: HttpRequestOptions,
): Promise<HttpAnswer> {
  const controller = new AbortController();
  // the reason AbortSignal.timeout() gives, but with a timer we can clear
  const timer = setTimeout(
    () => controller.abort(timeoutError()),
    options.timeoutMs,
  );
  try {
    // without a dispatcher: the global one
    const res = await dispatcherSend(url, {
      method: options.method ?? 'GET',
      headers: options.headers,
      body: options.body,
      signal: controller.signal,
    });
    const text = await readCapped(res.body, res.headers['content-length']);
    return answer(res.statusCode, res.headers, text);
  } finally {
    clearTimeout(timer);
  }
}

function answer(
  status: number,
  headers: IncomingHttpHeaders,
  text: string,
): HttpAnswer {
  return {
    status,
    ok: status >= 200 && status < 300,
    header(name) {
      const value = headers[name.toLowerCase()];
      return Array.isArray(value) ? value[0] : value;
    },
    text,
  };
}

/**
 * The body as text, or a {@link ResponseTooLargeError} past the cap (read no
 * further); an answer cut short by the server is an error, not a body.
 */
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
