import {
  AuthenticationError,
  NotAllowedError,
  ServiceUnavailableError,
} from '@backstage/errors';
import { MAX_RESPONSE_BYTES } from './http';

/**
 * The permission boxes of a Bitbucket OAuth consumer, by the classic scope
 * each one grants (https://developer.atlassian.com/cloud/bitbucket/bitbucket-cloud-rest-api-scopes).
 */
const PERMISSION_LABELS: Record<string, string> = {
  account: 'Account: Read',
  'account:write': 'Account: Write',
  email: 'Account: Email',
  team: 'Workspace membership: Read',
  'team:write': 'Workspace membership: Write',
  project: 'Projects: Read',
  'project:admin': 'Projects: Admin',
  repository: 'Repositories: Read',
  'repository:write': 'Repositories: Write',
  'repository:admin': 'Repositories: Admin',
  'repository:delete': 'Repositories: Delete',
  pullrequest: 'Pull requests: Read',
  'pullrequest:write': 'Pull requests: Write',
  issue: 'Issues: Read',
  'issue:write': 'Issues: Write',
  wiki: 'Wikis: Read and write',
  snippet: 'Snippets: Read',
  'snippet:write': 'Snippets: Write',
  webhook: 'Webhooks: Read and write',
  pipeline: 'Pipelines: Read',
  'pipeline:write': 'Pipelines: Write',
  'pipeline:variable': 'Pipelines: Edit variables',
  runner: 'Runners: Read',
  'runner:write': 'Runners: Write',
};

/** "Account: Email" (scope email), for a list of scopes. */
export function describePermissions(scopes: string[]): string {
  return scopes
    .map(s => (PERMISSION_LABELS[s] ? `"${PERMISSION_LABELS[s]}"` : `"${s}"`))
    .join(', ');
}

const WHERE_TO_TICK =
  'in Bitbucket under Workspace settings > OAuth consumers > Edit';

/** Bitbucket's REST error body: `{"type":"error","error":{"message","detail"}}`. */
export interface BitbucketErrorBody {
  message?: string;
  detail?: unknown;
}

/** Shortens text from a remote answer before it goes into a message. */
export function clip(text: string, max = 200): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

/** Parses Bitbucket's REST error body; undefined when the body is not one. */
export function parseBitbucketErrorBody(
  text: string,
): BitbucketErrorBody | undefined {
  try {
    const json = JSON.parse(text);
    const error = json?.error;
    if (error && typeof error === 'object') {
      return {
        message: typeof error.message === 'string' ? error.message : undefined,
        detail: error.detail,
      };
    }
  } catch {
    // not JSON: the caller reports the status only
  }
  return undefined;
}

function scopeDetail(
  detail: unknown,
): { required: string[]; granted: string[] } | undefined {
  if (!detail || typeof detail !== 'object') return undefined;
  const { required, granted } = detail as Record<string, unknown>;
  if (!Array.isArray(required)) return undefined;
  return {
    required: required.map(String),
    granted: Array.isArray(granted) ? granted.map(String) : [],
  };
}

/**
 * Turns a non-2xx answer of the Bitbucket REST API into an error that says
 * what happened and what to do. The body is parsed, never passed on raw.
 */
export function restError(
  endpoint: string,
  status: number,
  bodyText: string,
): Error {
  const body = parseBitbucketErrorBody(bodyText);
  const said = body?.message
    ? ` (Bitbucket said: "${clip(body.message)}")`
    : '';
  if (status === 403) {
    const scopes = scopeDetail(body?.detail);
    if (scopes) {
      const missing = scopes.required.filter(s => !scopes.granted.includes(s));
      const need = missing.length ? missing : scopes.required;
      return new NotAllowedError(
        `Bitbucket refused ${endpoint}: the access token lacks the scope ${need
          .map(s => `'${s}'`)
          .join(', ')} (granted: ${
          scopes.granted.join(' ') || 'none'
        }). Tick ${describePermissions(
          need,
        )} on the OAuth consumer ${WHERE_TO_TICK}, then sign in again.`,
      );
    }
    return new NotAllowedError(
      `Bitbucket refused ${endpoint} with HTTP 403${said}. Check the OAuth consumer's permissions ${WHERE_TO_TICK}.`,
    );
  }
  if (status === 401) {
    return new AuthenticationError(
      `Bitbucket rejected the access token for ${endpoint}${said}. Sign in again.`,
    );
  }
  if (status >= 300 && status < 400) {
    return new ServiceUnavailableError(
      `Bitbucket answered ${endpoint} with a redirect (HTTP ${status}), which this module does not follow with the access token. Check that apiBaseUrl is the Bitbucket REST API itself (https://api.bitbucket.org/2.0), not a URL that redirects to it.`,
    );
  }
  if (status === 410) {
    return new ServiceUnavailableError(
      `Bitbucket answered ${endpoint} with HTTP 410 Gone${said}: Bitbucket removed this endpoint. Upgrade this module.`,
    );
  }
  if (status === 429) {
    return new ServiceUnavailableError(
      `Bitbucket rate limit reached for this OAuth consumer (HTTP 429 on ${endpoint}). Try again in a few minutes.`,
    );
  }
  return new ServiceUnavailableError(
    `Bitbucket answered ${endpoint} with HTTP ${status}${said}. Try again later; if it persists check https://bitbucket.status.atlassian.com.`,
  );
}

/** Error for a 2xx answer whose body is not JSON. */
export function invalidJsonError(endpoint: string): Error {
  return new ServiceUnavailableError(
    `Bitbucket answered ${endpoint} with a body that is not valid JSON. Try again later; if it persists, check that ${settingFor(
      endpoint,
    )}.`,
  );
}

/** The setting that points at the host of `endpoint`, for messages. */
function settingFor(endpoint: string): string {
  // the token endpoint lives under baseUrl, the REST API under apiBaseUrl
  return endpoint.includes('/site/oauth2/')
    ? 'baseUrl points at Bitbucket (https://bitbucket.org)'
    : 'apiBaseUrl points at the Bitbucket REST API (…/2.0)';
}

/** Error for a sign-in whose calls together took longer than `signInTimeout`. */
export function deadlineError(endpoint: string, totalMs: number): Error {
  return new ServiceUnavailableError(
    `Bitbucket did not answer the calls of this sign-in within signInTimeout (${totalMs} ms): ${endpoint} was still running. Try again; if it persists, check that Bitbucket is reachable from the backend or raise signInTimeout.`,
  );
}

/**
 * Error for a call that did not complete (timeout, network or an oversized
 * answer). `deadline` is given when the sign-in's deadline, not
 * `requestTimeout`, set the call's time limit.
 */
export function transportError(
  endpoint: string,
  origin: string,
  error: unknown,
  timeoutMs: number,
  deadline?: { totalMs: number },
): Error {
  const name = (error as Error)?.name;
  if (name === 'ResponseTooLargeError') {
    return new ServiceUnavailableError(
      `Bitbucket's answer to ${endpoint} is larger than ${MAX_RESPONSE_BYTES} bytes, the most this module reads. Try again later; if it persists, check that ${settingFor(
        endpoint,
      )}.`,
    );
  }
  if (name === 'TimeoutError' || name === 'AbortError') {
    if (deadline) return deadlineError(endpoint, deadline.totalMs);
    return new ServiceUnavailableError(
      `Bitbucket did not answer ${endpoint} within ${timeoutMs} ms. Try again; if it persists, check that ${origin} is reachable from the backend or raise requestTimeout.`,
    );
  }
  const cause = (error as any)?.cause;
  const code =
    cause?.code ??
    (error as any)?.code ??
    cause?.message ??
    (error as Error)?.message;
  return new ServiceUnavailableError(
    `Could not reach Bitbucket at ${origin} for ${endpoint} (${clip(
      String(code),
      100,
    )}). Check the baseUrl/apiBaseUrl settings and the backend's network access.`,
  );
}

/**
 * The error a user sees when Bitbucket redirects back with `?error=` instead
 * of a code (RFC 6749 section 4.1.2.1).
 */
export function authorizeCallbackError(
  code: string,
  description: string | undefined,
): Error {
  const said = description ? ` (Bitbucket said: "${clip(description)}")` : '';
  if (code === 'access_denied') {
    return new NotAllowedError(
      `Sign-in was cancelled: access to your Bitbucket account was not granted. To sign in, try again and choose "Grant access" on Bitbucket's page.`,
    );
  }
  if (code === 'invalid_scope') {
    const missing = description?.match(/scopes:\s*(.+)$/)?.[1]?.split(/\s+/);
    const which = missing?.length
      ? `tick ${describePermissions(missing)}`
      : 'tick the permissions this portal requests ("Account: Read" and "Account: Email")';
    return new NotAllowedError(
      `The Bitbucket OAuth consumer lacks a permission this portal requests: ${which} ${WHERE_TO_TICK}, then sign in again${said}.`,
    );
  }
  if (code === 'unauthorized_client' || code === 'invalid_client') {
    return new NotAllowedError(
      `Bitbucket does not accept this OAuth consumer (${code})${said}. Check auth.providers.bitbucket.<env>.clientId.`,
    );
  }
  return new AuthenticationError(
    `Bitbucket could not authorize the sign-in (${clip(code, 60)})${said}.`,
  );
}

/**
 * A refresh with a cookie of a session that a logout ended (a copy of the
 * cookie, another tab): refused here, without asking Bitbucket.
 */
export function sessionEndedError(): Error {
  return new AuthenticationError(
    'This Bitbucket session was ended by a logout. Sign in again.',
  );
}

const invalidGrants = new WeakSet<Error>();

/**
 * Whether Bitbucket refused a refresh token (`invalid_grant`): it expired,
 * was revoked, or was already rotated, perhaps by another replica.
 */
export function isInvalidGrant(error: unknown): boolean {
  return error instanceof Error && invalidGrants.has(error);
}

/**
 * The error for an RFC 6749 error answer of the token endpoint.
 * `grant` tells whether a code was exchanged or a session refreshed.
 */
export function tokenError(
  grant: 'authorization_code' | 'refresh_token',
  status: number,
  bodyText: string,
): Error {
  let code: string | undefined;
  let description: string | undefined;
  try {
    const json = JSON.parse(bodyText);
    code = typeof json?.error === 'string' ? json.error : undefined;
    description =
      typeof json?.error_description === 'string'
        ? json.error_description
        : undefined;
  } catch {
    // not JSON
  }
  const said = description ? ` (Bitbucket said: "${clip(description)}")` : '';
  if (
    code === 'invalid_client' ||
    code === 'unauthorized_client' ||
    status === 401
  ) {
    return new AuthenticationError(
      `Bitbucket rejected the OAuth consumer credentials (${
        code ?? `HTTP ${status}`
      })${said}. Check that auth.providers.bitbucket.<env>.clientId and clientSecret are the Key and Secret of the consumer (Workspace settings > OAuth consumers).`,
    );
  }
  if (code === 'invalid_grant') {
    if (grant === 'refresh_token') {
      const error = new AuthenticationError(
        `Your Bitbucket session has expired or was revoked${said}. Sign in again.`,
      );
      invalidGrants.add(error);
      return error;
    }
    return new AuthenticationError(
      `Bitbucket did not accept the sign-in code: it expired or was already used${said}. Sign in again.`,
    );
  }
  if (code === 'invalid_scope') {
    return authorizeCallbackError(code, description);
  }
  if (status === 429) {
    return restError('the token endpoint', status, bodyText);
  }
  return new ServiceUnavailableError(
    `Bitbucket's token endpoint answered HTTP ${status}${
      code ? ` (${clip(code, 60)})` : ''
    }${said}. Try again later.`,
  );
}
