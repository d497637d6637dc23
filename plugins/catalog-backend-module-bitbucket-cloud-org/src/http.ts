import { request } from 'undici';

/** A whole answer: status, headers and body text. */
export interface Answer {
  status: number;
  header(name: string): string | undefined;
  text: string;
}

/**
 * One call to Bitbucket through undici's global dispatcher (the one Node's
 * `fetch` uses, so a proxy set with `setGlobalDispatcher` applies). The
 * timeout covers the body too; redirects are not followed, so a token only
 * ever goes to the URL it was meant for. A timeout rejects with an error
 * named `TimeoutError`.
 */
export async function call(
  url: string,
  init: {
    method: 'GET' | 'POST';
    headers: Record<string, string>;
    body?: string;
    timeoutMs: number;
  },
): Promise<Answer> {
  const res = await request(url, {
    method: init.method,
    headers: init.headers,
    body: init.body,
    signal: AbortSignal.timeout(init.timeoutMs),
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    header(name) {
      const value = res.headers[name.toLowerCase()];
      return Array.isArray(value) ? value[0] : value;
    },
    text,
  };
}
