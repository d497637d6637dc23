import { createHash, timingSafeEqual } from 'node:crypto';
import { answerClientCredentials } from './client-credentials';
import { rememberedGrants } from './grants';
import {
  Exchange,
  mediaType,
  redirect,
  send,
  sendHtml,
  sendJson,
} from './http';
import { renderConsentPage, renderErrorPage } from './html';
import type { SeedConsumer } from './seed';
import { EmulatorState, GrantError, IssuedTokens } from './state';

// OAuth 2.0 endpoints of Bitbucket Cloud:
// https://developer.atlassian.com/cloud/bitbucket/oauth-2/

/** Pathname of the authorization endpoint (consent page and its form). */
export const AUTHORIZE_PATH = '/site/oauth2/authorize';
/** Pathname of the token endpoint. */
export const TOKEN_PATH = '/site/oauth2/access_token';

const FORM = 'application/x-www-form-urlencoded';

/** Options of the OAuth handlers. */
export interface OAuthOptions {
  /** Token responses use the pre-2026 `scopes` field instead of `scope`. */
  legacyScopesField: boolean;
}

type AuthorizeCheck =
  | {
      kind: 'page';
      status: number;
      heading: string;
      message: string;
      note?: string;
    }
  | { kind: 'redirect'; location: string }
  | {
      kind: 'ok';
      consumer: SeedConsumer;
      scopes: string[];
      target: string;
      params: URLSearchParams;
    };

/**
 * `GET /site/oauth2/authorize`: validates the request and shows the consent
 * page; a browser signed in as a user who granted the consumer every
 * requested scope before goes straight back with a code.
 */
export function handleAuthorizeGet(ex: Exchange, state: EmulatorState): void {
  const check = checkAuthorizeRequest(state, ex.url.searchParams);
  if (check.kind !== 'ok') {
    answerCheck(ex, check);
    return;
  }
  const grants = rememberedGrants(state);
  const sessionUser = grants.sessionUser(ex.req);
  const chosen =
    sessionUser && state.user(sessionUser) ? sessionUser : undefined;
  const missing = chosen
    ? grants.missing(chosen, check.consumer.key, check.scopes)
    : check.scopes;
  if (chosen && missing.length === 0) {
    const code = state.issueCode({
      clientId: check.consumer.key,
      userUuid: chosen,
      scopes: check.scopes,
      redirectUri: check.params.get('redirect_uri') ?? undefined,
    });
    redirect(
      ex,
      withParams(check.target, { code, state: check.params.get('state') }),
    );
    return;
  }
  // The form carries the request as it came in, so the POST is validated again
  // from scratch and nothing is kept server-side between the two steps.
  const hidden: Record<string, string> = {};
  for (const name of [
    'client_id',
    'response_type',
    'redirect_uri',
    'scope',
    'state',
  ]) {
    const value = check.params.get(name);
    if (value !== null) {
      hidden[name] = value;
    }
  }
  sendHtml(
    ex,
    200,
    renderConsentPage({
      consumer: check.consumer,
      scopes: missing,
      users: state.users(),
      action: AUTHORIZE_PATH,
      hidden,
      alreadyGranted: chosen
        ? check.scopes.filter(s => !missing.includes(s))
        : undefined,
      chosen,
    }),
  );
}

/** `POST /site/oauth2/authorize`: the consent form's Grant or Cancel. */
export function handleAuthorizePost(ex: Exchange, state: EmulatorState): void {
  if (mediaType(ex.req) !== FORM) {
    sendHtml(
      ex,
      400,
      renderErrorPage(
        'Bad request',
        'The consent form must be posted as a web form.',
      ),
    );
    return;
  }
  const form = new URLSearchParams(ex.body);
  const check = checkAuthorizeRequest(state, form);
  if (check.kind !== 'ok') {
    answerCheck(ex, check);
    return;
  }
  const oauthState = form.get('state');
  const decision = form.get('decision');

  if (decision === 'cancel') {
    // Not verified against Bitbucket: RFC 6749 section 4.1.2.1.
    redirect(
      ex,
      withParams(check.target, {
        error: 'access_denied',
        error_description: 'The user denied access to the application.',
        state: oauthState,
      }),
    );
    return;
  }
  if (decision !== 'grant') {
    sendHtml(
      ex,
      400,
      renderErrorPage('Bad request', 'Choose "Grant access" or "Cancel".'),
    );
    return;
  }
  const account = form.get('account');
  const user = account ? state.user(account) : undefined;
  if (!user) {
    sendHtml(
      ex,
      400,
      renderErrorPage(
        'Choose an account',
        account
          ? 'The chosen account does not exist any more. Go back and choose another one.'
          : 'Choose the account to continue as, then choose "Grant access".',
      ),
    );
    return;
  }
  const code = state.issueCode({
    clientId: check.consumer.key,
    userUuid: user.uuid,
    scopes: check.scopes,
    redirectUri: form.get('redirect_uri') ?? undefined,
  });
  // the browser is signed in as `user` now, and the grant is remembered
  const cookie = rememberedGrants(state).remember(
    ex.req,
    user.uuid,
    check.consumer.key,
    check.scopes,
  );
  send(
    ex,
    302,
    {
      location: withParams(check.target, { code, state: oauthState }),
      'cache-control': 'no-store',
      'set-cookie': cookie,
    },
    '',
  );
}

/** `POST /site/oauth2/access_token`. */
export function handleToken(
  ex: Exchange,
  state: EmulatorState,
  options: OAuthOptions,
): void {
  if (ex.req.method !== 'POST') {
    sendJson(
      ex,
      405,
      {
        error: 'invalid_request',
        error_description: 'The token endpoint only accepts POST requests.',
      },
      { allow: 'POST' },
    );
    return;
  }
  // Bitbucket reads the body as a web form only; a JSON body looks like a form
  // without any parameters, hence "Unsupported grant type: None" [obs].
  const form =
    mediaType(ex.req) === FORM
      ? new URLSearchParams(ex.body)
      : new URLSearchParams();

  const client = authenticateClient(ex, state, form);
  if (!client) {
    return;
  }

  const grantType = form.get('grant_type');
  let tokens: IssuedTokens;
  try {
    if (grantType === null || grantType === '') {
      tokenError(ex, 400, {
        error_description: 'Unsupported grant type: None',
        error: 'invalid_grant',
      });
      return;
    } else if (grantType === 'authorization_code') {
      const code = form.get('code');
      if (!code) {
        throw new GrantError(
          'invalid_request',
          'The code parameter is required.',
        );
      }
      tokens = state.redeemCode({
        code,
        clientId: client.key,
        redirectUri: form.get('redirect_uri') ?? undefined,
      });
    } else if (grantType === 'refresh_token') {
      const refreshToken = form.get('refresh_token');
      if (!refreshToken) {
        throw new GrantError(
          'invalid_request',
          'The refresh_token parameter is required.',
        );
      }
      tokens = state.refresh({
        refreshToken,
        clientId: client.key,
        scopes: splitScopes(form.get('scope')),
      });
    } else if (grantType === 'client_credentials') {
      answerClientCredentials(
        ex,
        state.consumerTokens,
        client,
        splitScopes(form.get('scope')),
        options.legacyScopesField,
      );
      return;
    } else {
      tokenError(ex, 400, {
        error: 'unsupported_grant_type',
        error_description: `Unsupported grant type: ${grantType}`,
      });
      return;
    }
  } catch (error) {
    if (error instanceof GrantError) {
      tokenError(ex, 400, {
        error: error.error,
        error_description: error.description,
      });
      return;
    }
    throw error;
  }

  const scope = tokens.scopes.join(' ');
  sendJson(
    ex,
    200,
    {
      access_token: tokens.accessToken,
      ...(options.legacyScopesField ? { scopes: scope } : { scope }),
      expires_in: tokens.expiresIn,
      token_type: 'bearer',
      // Bitbucket echoes the grant type here, not the OAuth state [obs].
      state: grantType,
      refresh_token: tokens.refreshToken,
    },
    { 'cache-control': 'no-store', pragma: 'no-cache' },
  );
}

/** Splits a space-separated scope parameter. */
export function splitScopes(value: string | null | undefined): string[] {
  return (value ?? '').split(/\s+/).filter(Boolean);
}

function checkAuthorizeRequest(
  state: EmulatorState,
  params: URLSearchParams,
): AuthorizeCheck {
  const clientId = params.get('client_id');
  const consumer = clientId ? state.consumer(clientId) : undefined;
  if (!consumer) {
    // [inferred] Like a bad redirect_uri, an unknown consumer gets a page, not a redirect.
    return {
      kind: 'page',
      status: 400,
      heading: 'Invalid client_id',
      message:
        'This integration is misconfigured. Contact the vendor for assistance.',
      note: clientId
        ? `Emulator note: no OAuth consumer has the key "${clientId}".`
        : 'Emulator note: the request has no client_id parameter.',
    };
  }

  const redirectUri = params.get('redirect_uri');
  // Bitbucket's rule: a redirect_uri must start with the consumer's callback URL [doc].
  if (redirectUri !== null && !redirectUri.startsWith(consumer.callbackUrl)) {
    return {
      kind: 'page',
      status: 400,
      heading: 'Invalid redirect_uri',
      message:
        'This integration is misconfigured. Contact the vendor for assistance.',
      note: `Emulator note: "${redirectUri}" does not start with the consumer's callback URL "${consumer.callbackUrl}".`,
    };
  }
  const target = redirectUri ?? consumer.callbackUrl;
  const oauthState = params.get('state');

  const responseType = params.get('response_type');
  if (responseType !== 'code') {
    return {
      kind: 'redirect',
      location: withParams(target, {
        error: 'unsupported_response_type',
        error_description: `Unsupported response type: ${
          responseType ?? 'None'
        }`,
        state: oauthState,
      }),
    };
  }

  const requested = [...new Set(splitScopes(params.get('scope')))];
  const beyond = requested.filter(s => !consumer.permissions.includes(s));
  if (beyond.length > 0) {
    return {
      kind: 'redirect',
      location: withParams(target, {
        error: 'invalid_scope',
        error_description: `These requested scopes are beyond the OAuth client's own scopes: ${beyond.join(
          ' ',
        )}`,
        state: oauthState,
      }),
    };
  }
  const scopes = requested.length > 0 ? requested : [...consumer.permissions];
  return { kind: 'ok', consumer, scopes, target, params };
}

function answerCheck(ex: Exchange, check: AuthorizeCheck): void {
  if (check.kind === 'page') {
    sendHtml(
      ex,
      check.status,
      renderErrorPage(check.heading, check.message, check.note),
    );
  } else if (check.kind === 'redirect') {
    redirect(ex, check.location);
  }
}

/**
 * Authenticates the client by HTTP Basic and/or `client_id` + `client_secret`
 * in the body; answers the error itself and returns undefined on failure.
 */
function authenticateClient(
  ex: Exchange,
  state: EmulatorState,
  form: URLSearchParams,
): SeedConsumer | undefined {
  const basic = parseBasic(ex.req.headers.authorization);
  const bodyId = form.get('client_id');
  const bodySecret = form.get('client_secret');

  if (!basic && (bodyId === null || bodySecret === null)) {
    tokenError(ex, 401, {
      error_description:
        'Requests must be authenticated using OAuth client credentials',
      error: 'unauthorized_client',
    });
    return undefined;
  }
  if (
    basic &&
    ((bodyId !== null && bodyId !== basic.id) ||
      (bodySecret !== null && !sameSecret(bodySecret, basic.secret)))
  ) {
    tokenError(ex, 401, {
      error: 'invalid_client',
      error_description:
        'The client credentials in the Authorization header and in the request body differ.',
    });
    return undefined;
  }
  const id = basic?.id ?? (bodyId as string);
  const secret = basic?.secret ?? (bodySecret as string);
  const consumer = state.consumer(id);
  if (!consumer || !sameSecret(secret, consumer.secret)) {
    tokenError(ex, 401, {
      error: 'invalid_client',
      error_description: 'Invalid OAuth client credentials.',
    });
    return undefined;
  }
  return consumer;
}

function parseBasic(
  header: string | undefined,
): { id: string; secret: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=._-]+)\s*$/i.exec(header ?? '');
  if (!match) {
    return undefined;
  }
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) {
    return undefined;
  }
  return { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function tokenError(
  ex: Exchange,
  status: number,
  body: { error: string; error_description: string },
): void {
  sendJson(ex, status, body, {
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
}

/** Appends query parameters to a redirect target, skipping null ones. */
function withParams(
  target: string,
  params: Record<string, string | null | undefined>,
): string {
  const url = new URL(target);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined) {
      url.searchParams.append(name, value);
    }
  }
  return url.toString();
}
