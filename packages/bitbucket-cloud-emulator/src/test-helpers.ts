import { IncomingHttpHeaders, request as plainRequest } from 'node:http';
import { request as tlsRequest } from 'node:https';
import type { BitbucketCloudEmulator } from './server';

/** The demo seed's users, by first name. */
export const DEMO_USERS = {
  jane: '{3f1c2a8e-5b7d-4e29-9a61-0c4d8b2e7f15}',
  bob: '{8a4e6c21-9d3b-47f0-b512-6e9c0a7d3f48}',
  carol: '{c27d5e93-0f6a-4b18-8e34-91b7a2c6d05f}',
  mallory: '{e5b03f7c-2a94-4d61-b7e8-3c0f9a1d6e27}',
  eve: '{4d8f1b6a-7e23-4c90-85af-d2e6b0c9a713}',
};

/** The demo consumer. */
export const DEMO_CLIENT = {
  id: 'backstage-demo',
  secret: 'backstage-demo-secret',
  callbackUrl: 'http://localhost:7007/api/auth/bitbucket',
  redirectUri: 'http://localhost:7007/api/auth/bitbucket/handler/frame',
};

/** A response read in full. */
export interface TestResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json(): any;
}

/**
 * An HTTP or HTTPS request over a private agent (Jest's network guard only
 * lets loopback IP addresses through, and fetch is disabled there). `ca`:
 * the CA to trust over HTTPS (an HTTPS emulator's `caCert`).
 */
export function httpRequest(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
    ca?: string;
  } = {},
): Promise<TestResponse> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? tlsRequest : plainRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ca: init.ca,
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: init.method ?? 'GET',
        headers: {
          ...(init.body !== undefined
            ? { 'content-length': String(Buffer.byteLength(init.body)) }
            : {}),
          ...init.headers,
        },
        agent: false,
      },
      res => {
        const chunks: Buffer[] = [];
        res.on('data', chunk => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text),
          });
        });
        res.on('error', reject);
      },
    );
    if (init.timeoutMs !== undefined) {
      req.setTimeout(init.timeoutMs, () =>
        req.destroy(new Error(`timed out after ${init.timeoutMs} ms`)),
      );
    }
    req.on('error', reject);
    req.end(init.body);
  });
}

/** `Authorization: Basic` for a client id and secret. */
export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

/** POSTs a web form to the token endpoint. */
export function postToken(
  emulator: BitbucketCloudEmulator,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<TestResponse> {
  return httpRequest(`${emulator.url}/site/oauth2/access_token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...headers,
    },
    body: new URLSearchParams(fields).toString(),
    ca: emulator.caCert,
  });
}

/** The authorize URL a client of the demo consumer would redirect to. */
export function authorizeUrl(
  emulator: BitbucketCloudEmulator,
  params: Record<string, string> = {},
): string {
  const query = new URLSearchParams({
    client_id: DEMO_CLIENT.id,
    response_type: 'code',
    redirect_uri: DEMO_CLIENT.redirectUri,
    ...params,
  });
  return `${emulator.url}/site/oauth2/authorize?${query}`;
}

/** Grants consent as `user` and returns the code from the redirect. */
export async function getCode(
  emulator: BitbucketCloudEmulator,
  user: string,
  params: Record<string, string> = {},
): Promise<string> {
  const location = new URL(
    await emulator.authorize(authorizeUrl(emulator, params), user),
  );
  const code = location.searchParams.get('code');
  if (!code) {
    throw new Error(`no code in ${location}`);
  }
  return code;
}

/** Signs in as `user` through the demo consumer and returns the token response. */
export async function signIn(
  emulator: BitbucketCloudEmulator,
  user: string,
  scope?: string,
): Promise<{
  access_token: string;
  refresh_token: string;
  scope?: string;
  scopes?: string;
}> {
  const code = await getCode(emulator, user, scope ? { scope } : {});
  const response = await postToken(
    emulator,
    {
      grant_type: 'authorization_code',
      code,
      redirect_uri: DEMO_CLIENT.redirectUri,
    },
    { authorization: basic(DEMO_CLIENT.id, DEMO_CLIENT.secret) },
  );
  if (response.status !== 200) {
    throw new Error(
      `token exchange failed: ${response.status} ${response.text}`,
    );
  }
  return response.json();
}

/** GETs a REST endpoint with a bearer token. */
export function getApi(
  emulator: BitbucketCloudEmulator,
  pathAndQuery: string,
  accessToken?: string,
): Promise<TestResponse> {
  return httpRequest(`${emulator.url}${pathAndQuery}`, {
    headers: accessToken ? { authorization: `Bearer ${accessToken}` } : {},
    ca: emulator.caCert,
  });
}
