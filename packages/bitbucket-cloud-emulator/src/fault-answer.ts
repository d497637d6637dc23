import { STATUS_CODES } from 'node:http';
import { Exchange, send, sendHtml, sendJson, sendText } from './http';
import { renderErrorPage } from './html';
import { TOKEN_PATH, AUTHORIZE_PATH } from './oauth';
import { API_PREFIX, sendBitbucketError } from './rest';

const RATE_LIMITED = 'Rate limit for this resource has been exceeded';

/**
 * Answers an injected status with the body shape of the endpoint hit: the
 * Bitbucket error body under `/2.0`, the RFC 6749 pair on the token endpoint,
 * an HTML page on the authorize endpoint, plain text elsewhere.
 */
export function answerFaultStatus(
  ex: Exchange,
  status: number,
  retryAfterSeconds?: number,
): void {
  const headers: Record<string, string> = {};
  if (retryAfterSeconds !== undefined) {
    headers['retry-after'] = String(Math.ceil(retryAfterSeconds));
  }
  const path = ex.url.pathname;
  const text = STATUS_CODES[status] ?? `HTTP ${status}`;

  if (status < 400) {
    send(ex, status, headers, '');
  } else if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
    let message = text;
    if (status === 429) {
      message = RATE_LIMITED;
    } else if (status === 401) {
      message = 'Access token expired.';
    }
    sendBitbucketError(ex, status, message, undefined, headers);
  } else if (path === TOKEN_PATH) {
    sendJson(ex, status, tokenErrorBody(status, text), {
      ...headers,
      'cache-control': 'no-store',
    });
  } else {
    for (const [name, value] of Object.entries(headers)) {
      ex.res.setHeader(name, value);
    }
    if (path === AUTHORIZE_PATH) {
      sendHtml(
        ex,
        status,
        renderErrorPage(text, 'Something went wrong. Try again later.'),
      );
    } else {
      sendText(ex, status, text);
    }
  }
}

function tokenErrorBody(status: number, text: string) {
  if (status === 429) {
    return {
      error: 'temporarily_unavailable',
      error_description: RATE_LIMITED,
    };
  }
  if (status === 503 || status === 502 || status === 504) {
    return {
      error: 'temporarily_unavailable',
      error_description:
        'The service is temporarily unavailable. Try again later.',
    };
  }
  if (status >= 500) {
    return { error: 'server_error', error_description: text };
  }
  if (status === 401) {
    return {
      error: 'invalid_client',
      error_description: 'Client authentication failed.',
    };
  }
  if (status === 403) {
    return { error: 'access_denied', error_description: text };
  }
  return { error: 'invalid_request', error_description: text };
}
