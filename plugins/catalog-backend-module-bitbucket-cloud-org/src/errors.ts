import {
  AuthenticationError,
  NotAllowedError,
  NotFoundError,
  ServiceUnavailableError,
} from '@backstage/errors';
import type { ProviderSettings } from './config';
import type { Answer } from './http';

// Every message says what happened and what to change. None contains a
// token or secret: the only remote text in them is Bitbucket's own error
// message, clipped.

type Settings = Pick<
  ProviderSettings,
  'path' | 'credentialsPath' | 'requestTimeoutMs'
>;

const CONSUMERS = 'Workspace settings > OAuth consumers';

/**
 * A listing of one workspace that is not applied: the workspace's Group keeps
 * its last good listing and the other workspaces are applied. Any other error
 * (the token, the network, the rate limit) stops the whole run.
 */
export class WorkspaceListingError extends Error {
  readonly name = 'WorkspaceListingError';
}

/** The error as a {@link WorkspaceListingError}, with the same message. */
export function forWorkspace(error: Error): WorkspaceListingError {
  return error instanceof WorkspaceListingError
    ? error
    : new WorkspaceListingError(error.message);
}

function clip(text: string, max = 200): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** Bitbucket's words from a REST or OAuth error body, as `, Bitbucket said: "…"`. */
function said(body: string): string {
  try {
    const json = JSON.parse(body);
    const text =
      typeof json?.error?.message === 'string'
        ? json.error.message
        : json?.error_description;
    if (typeof text === 'string' && text) {
      return `, Bitbucket said: "${clip(text)}"`;
    }
  } catch {
    // not JSON: the status alone is reported
  }
  return '';
}

function scopeDetail(
  body: string,
): { required: string[]; granted: string[] } | undefined {
  try {
    const detail = JSON.parse(body)?.error?.detail;
    if (Array.isArray(detail?.required)) {
      return {
        required: detail.required.map(String),
        granted: Array.isArray(detail.granted)
          ? detail.granted.map(String)
          : [],
      };
    }
  } catch {
    // no scope detail
  }
  return undefined;
}

function oauthErrorCode(body: string): string | undefined {
  try {
    const code = JSON.parse(body)?.error;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

function rateLimited(settings: Settings, endpoint: string, answer: Answer) {
  const retryAfter = answer.header('retry-after');
  return new ServiceUnavailableError(
    `Bitbucket's rate limit for the OAuth consumer was reached (HTTP 429 on ${endpoint}${
      retryAfter ? `, Retry-After ${clip(retryAfter, 20)} s` : ''
    }). The next scheduled run tries again; if this recurs, lower the frequency at '${
      settings.path
    }.schedule' or give the catalog an OAuth consumer of its own (the limit is per consumer).`,
  );
}

/** A call that got no answer: a timeout, or the host could not be reached. */
export function transportFailure(
  settings: Settings,
  endpoint: string,
  url: string,
  setting: 'baseUrl' | 'apiBaseUrl',
  error: unknown,
): Error {
  const origin = new URL(url).origin;
  if ((error as Error)?.name === 'TimeoutError') {
    return new ServiceUnavailableError(
      `Bitbucket did not answer ${endpoint} within ${settings.requestTimeoutMs} ms. Check that ${origin} is reachable from the backend ('${settings.path}.${setting}'), or raise '${settings.path}.requestTimeout'.`,
    );
  }
  const cause = (error as any)?.cause;
  const code = cause?.code ?? (error as any)?.code ?? (error as Error)?.message;
  return new ServiceUnavailableError(
    `Could not reach Bitbucket at ${origin} for ${endpoint} (${clip(
      String(code),
      100,
    )}). Check '${
      settings.path
    }.${setting}' and the backend's network access (proxy, firewall, DNS).`,
  );
}

/** A 2xx answer that is not what the endpoint answers. */
export function invalidAnswer(
  settings: Settings,
  endpoint: string,
  setting: 'baseUrl' | 'apiBaseUrl',
  what: string,
): Error {
  return new ServiceUnavailableError(
    `Bitbucket answered ${endpoint} with ${what}. Try again later; if it persists, check that '${
      settings.path
    }.${setting}' points at Bitbucket Cloud (${
      setting === 'baseUrl'
        ? 'https://bitbucket.org'
        : 'https://api.bitbucket.org/2.0'
    }).`,
  );
}

/** The answer's JSON body; a body that is not JSON fails with {@link invalidAnswer}. */
export function readJson(
  settings: Settings,
  endpoint: string,
  setting: 'baseUrl' | 'apiBaseUrl',
  answer: Answer,
): any {
  try {
    return JSON.parse(answer.text);
  } catch {
    throw invalidAnswer(settings, endpoint, setting, 'a body that is not JSON');
  }
}

/** A failed client-credentials grant. */
export function tokenFailure(
  settings: Settings,
  endpoint: string,
  answer: Answer,
): Error {
  const code = oauthErrorCode(answer.text);
  const detail = `${code ?? `HTTP ${answer.status}`}${said(answer.text)}`;
  if (
    answer.status === 401 ||
    code === 'invalid_client' ||
    code === 'unauthorized_client'
  ) {
    return new AuthenticationError(
      `Bitbucket rejected the OAuth consumer's credentials (${detail}). Check that '${settings.credentialsPath}.clientId' and '${settings.credentialsPath}.clientSecret' are the Key and Secret of an OAuth consumer (${CONSUMERS}) marked "This is a private consumer", which the client-credentials grant needs.`,
    );
  }
  if (code === 'unsupported_grant_type' || code === 'invalid_grant') {
    return new NotAllowedError(
      `Bitbucket refused the client-credentials grant to the OAuth consumer (${detail}). Edit the consumer of '${settings.credentialsPath}' (${CONSUMERS}) and tick "This is a private consumer".`,
    );
  }
  if (answer.status === 429) {
    return rateLimited(settings, endpoint, answer);
  }
  return new ServiceUnavailableError(
    `Bitbucket's token endpoint failed (HTTP ${answer.status}${
      code ? `, ${code}` : ''
    }${said(
      answer.text,
    )}). Try again later; if it persists check https://bitbucket.status.atlassian.com.`,
  );
}

/**
 * A listing that came back shorter than Bitbucket says it is: nothing to
 * accept, the next run lists again.
 */
export function shrunkenAnswer(
  settings: Pick<ProviderSettings, 'path'>,
  endpoint: string,
  what: string,
): WorkspaceListingError {
  return new WorkspaceListingError(
    `Bitbucket answered ${endpoint} with ${what}; such a listing is not applied. Nothing needs accepting: the next run lists again. If it persists, check that '${settings.path}.apiBaseUrl' points at Bitbucket Cloud (https://api.bitbucket.org/2.0) and not at a proxy that rewrites answers.`,
  );
}

/**
 * A refused `GET /2.0/workspaces/{workspace}/permissions` that is not a
 * missing scope: Bitbucket lets only workspace admins read it.
 */
export function permissionsRefused(
  settings: Settings,
  workspace: string,
  endpoint: string,
  answer: Answer,
): WorkspaceListingError {
  return new WorkspaceListingError(
    `Bitbucket refused ${endpoint} (HTTP 403${said(
      answer.text,
    )}), the listing that tells members from collaborators, which only a workspace admin may read. Use an OAuth consumer created in the settings of the workspace '${workspace}' itself (${CONSUMERS}, as a workspace admin) with "Workspace membership: Read", and set its Key and Secret at '${
      settings.credentialsPath
    }'; a consumer of another workspace or of a personal account may read the members but not their permissions. Without that listing the workspace is not imported, so that no collaborator becomes a member.`,
  );
}

/** A failed `GET /2.0/workspaces/{workspace}/members`. */
export function membersFailure(
  settings: Settings,
  workspace: string,
  endpoint: string,
  answer: Answer,
): Error {
  const words = said(answer.text);
  switch (answer.status) {
    case 401:
      return new AuthenticationError(
        `Bitbucket rejected a fresh access token of the OAuth consumer (HTTP 401 on ${endpoint}${words}). Check the consumer of '${settings.credentialsPath}' (${CONSUMERS}); it may have been deleted.`,
      );
    case 403: {
      const scopes = scopeDetail(answer.text);
      if (scopes) {
        return new NotAllowedError(
          `The OAuth consumer of '${
            settings.credentialsPath
          }' lacks the permission "Workspace membership: Read" (scope '${scopes.required.join(
            "', '",
          )}'; granted: ${
            scopes.granted.join(' ') || 'none'
          }), which ${endpoint} needs. Tick it on the consumer (${CONSUMERS} > Edit); the next run uses it.`,
        );
      }
      return new NotAllowedError(
        `Bitbucket refused ${endpoint} (HTTP 403${words}): the OAuth consumer of '${settings.credentialsPath}' cannot read the workspace '${workspace}'. An OAuth consumer reads the workspace it was created in: configure a provider with a consumer of '${workspace}', or remove '${workspace}' from '${settings.path}.workspaces'.`,
      );
    }
    case 404:
      return new NotFoundError(
        `Bitbucket has no workspace '${workspace}' (HTTP 404 on ${endpoint}${words}). Check '${settings.path}.workspaces': use the workspace's slug (the part after bitbucket.org/ in its URL) or its '{uuid}'.`,
      );
    case 410:
      return new ServiceUnavailableError(
        `Bitbucket removed ${endpoint} (HTTP 410 Gone${words}). Upgrade this module.`,
      );
    case 429:
      return rateLimited(settings, endpoint, answer);
    default:
      if (answer.status >= 300 && answer.status < 400) {
        return new ServiceUnavailableError(
          `Bitbucket answered ${endpoint} with a redirect (HTTP ${answer.status}), which is not followed with the access token. Set '${settings.path}.apiBaseUrl' to the REST API itself (https://api.bitbucket.org/2.0).`,
        );
      }
      return new ServiceUnavailableError(
        `Bitbucket failed ${endpoint} (HTTP ${answer.status}${words}). Try again later; if it persists check https://bitbucket.status.atlassian.com.`,
      );
  }
}
