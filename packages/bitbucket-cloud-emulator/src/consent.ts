import { Agent, IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AUTHORIZE_PATH } from './oauth';

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Where the emulator listens, for requests made on a user's behalf. */
export interface ConsentTarget {
  /** Address to connect to (never a wildcard address). */
  connectHost: string;
  port: number;
  /** The CA to trust when the emulator serves HTTPS. */
  caCert?: string;
  /**
   * A keep-alive agent of the emulator's own (an `https.Agent` trusting the
   * CA over HTTPS): a browser keeps its connection to Bitbucket open, and a
   * TLS handshake per consent page would cost a benchmark's harness more
   * than the pages themselves.
   */
  agent: Agent;
}

/**
 * Plays the user on the consent page: GETs the authorize URL, then POSTs the
 * consent form as `userUuid` choosing Grant or Cancel, and returns the
 * Location the emulator redirected to.
 *
 * Requests go straight to the emulator's address with a private agent, so they
 * need no DNS lookup and work under Jest's network-request guard.
 */
export async function consentAs(
  target: ConsentTarget,
  authorizeUrl: string,
  userUuid: string,
  decision: 'grant' | 'cancel' = 'grant',
): Promise<string> {
  let url: URL;
  try {
    url = new URL(authorizeUrl);
  } catch {
    throw new Error(`authorize(): not an absolute URL: ${authorizeUrl}`);
  }
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (
    url.protocol !== (target.caCert ? 'https:' : 'http:') ||
    port !== target.port ||
    url.pathname !== AUTHORIZE_PATH
  ) {
    throw new Error(
      `authorize(): ${url.origin}${url.pathname} is not this emulator's authorize endpoint (port ${target.port}, path ${AUTHORIZE_PATH}); is the client configured with the emulator's URLs?`,
    );
  }

  const consent = await rawRequest(
    target,
    'GET',
    `${url.pathname}${url.search}`,
  );
  if (isRedirect(consent.status)) {
    return location(consent);
  }
  if (consent.status !== 200) {
    throw new Error(
      `authorize(): the authorize request failed with HTTP ${
        consent.status
      }: ${pageText(consent.body)}`,
    );
  }

  const form = parseConsentForm(consent.body);
  if (decision === 'grant' && !form.accounts.includes(userUuid)) {
    throw new Error(
      `authorize(): the consent page offers no account with uuid ${userUuid} (offered: ${
        form.accounts.join(', ') || 'none'
      })`,
    );
  }
  const body = new URLSearchParams(form.hidden);
  body.set('account', userUuid);
  body.set('decision', decision);
  const answer = await rawRequest(target, 'POST', form.action, body.toString());
  if (!isRedirect(answer.status)) {
    throw new Error(
      `authorize(): the consent form answered HTTP ${answer.status}: ${pageText(
        answer.body,
      )}`,
    );
  }
  return location(answer);
}

/**
 * One request over the keep-alive agent; sent again once when the connection
 * it reused had just been closed by the emulator (the request never reached
 * it), as a browser does.
 */
async function rawRequest(
  target: ConsentTarget,
  method: 'GET' | 'POST',
  path: string,
  body?: string,
): Promise<RawResponse> {
  try {
    return await rawRequestOnce(target, method, path, body);
  } catch (error) {
    if ((error as { reusedSocket?: boolean }).reusedSocket) {
      return rawRequestOnce(target, method, path, body);
    }
    throw error;
  }
}

function rawRequestOnce(
  target: ConsentTarget,
  method: 'GET' | 'POST',
  path: string,
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = target.caCert ? httpsRequest : httpRequest;
    const req = request(
      {
        host: target.connectHost,
        port: target.port,
        agent: target.agent,
        method,
        path,
        headers:
          body === undefined
            ? { accept: 'text/html' }
            : {
                accept: 'text/html',
                'content-type': 'application/x-www-form-urlencoded',
                'content-length': Buffer.byteLength(body),
              },
      },
      res => {
        const chunks: Buffer[] = [];
        res.on('data', chunk => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', error =>
      reject(
        Object.assign(error, {
          reusedSocket:
            req.reusedSocket &&
            (error as NodeJS.ErrnoException).code === 'ECONNRESET',
        }),
      ),
    );
    req.end(body);
  });
}

function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

function location(response: RawResponse): string {
  const value = response.headers.location;
  if (!value) {
    throw new Error(
      `authorize(): HTTP ${response.status} redirect without a Location`,
    );
  }
  return value;
}

/** Reads the consent form this emulator renders. */
function parseConsentForm(html: string): {
  action: string;
  hidden: [string, string][];
  accounts: string[];
} {
  const action = /<form method="post" action="([^"]*)">/.exec(html);
  if (!action) {
    throw new Error(
      `authorize(): the consent page has no form: ${pageText(html)}`,
    );
  }
  const hidden = [
    ...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g),
  ].map(m => [decodeEntities(m[1]), decodeEntities(m[2])] as [string, string]);
  const accounts = [
    ...html.matchAll(
      /<input type="radio" [^>]*name="account" value="([^"]*)"/g,
    ),
  ].map(m => decodeEntities(m[1]));
  return { action: decodeEntities(action[1]), hidden, accounts };
}

/** The readable text of an emulator page: `heading — paragraphs`. */
export function pageText(html: string): string {
  const strip = (s: string) =>
    decodeEntities(s.replace(/<[^>]*>/g, ' '))
      .replace(/\s+/g, ' ')
      .trim();
  const heading = /<h1>([\s\S]*?)<\/h1>/.exec(html);
  const paragraphs = [...html.matchAll(/<p[^>]*>([\s\S]*?)<\/p>/g)].map(m =>
    strip(m[1]),
  );
  if (!heading) {
    return strip(html.replace(/<style>[\s\S]*?<\/style>/g, '')).slice(0, 500);
  }
  return [strip(heading[1]), paragraphs.join(' ')].filter(Boolean).join(' — ');
}

function decodeEntities(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}
