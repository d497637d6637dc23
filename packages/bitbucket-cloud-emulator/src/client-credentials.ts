import { randomBytes } from 'node:crypto';
import { Exchange, sendJson } from './http';
import type { SeedConsumer } from './seed';

// The client-credentials grant (RFC 6749 section 4.4) of Bitbucket Cloud:
// https://developer.atlassian.com/cloud/bitbucket/oauth-2/#client-credentials-grant--4-4-
// The token acts as the consumer itself, not as a user: it reads what the
// workspaces that own the consumer hold (here: the seed's
// `consumers[].workspaces`), never `/2.0/user`.

/** What a client-credentials token grants. */
export interface ConsumerGrant {
  clientId: string;
  scopes: string[];
}

/** The outcome of looking up a bearer token among the consumer tokens. */
export type ConsumerTokenLookup =
  | { status: 'valid'; grant: ConsumerGrant }
  | { status: 'expired' }
  | { status: 'unknown' };

interface ConsumerTokenRecord extends ConsumerGrant {
  expiresAt: number;
}

/** Options of {@link ConsumerTokenStore}. */
export interface ConsumerTokenStoreOptions {
  accessTokenTtlSeconds: number;
  /** The clock, in ms since the epoch. */
  now: () => number;
}

/**
 * The access tokens issued by the client-credentials grant. Kept apart from
 * the user tokens: they have no user and no refresh token.
 */
export class ConsumerTokenStore {
  private readonly tokens = new Map<string, ConsumerTokenRecord>();

  constructor(private readonly options: ConsumerTokenStoreOptions) {}

  /**
   * Issues a token for `consumer`. `requested` narrows the scopes within the
   * consumer's permissions; none requested grants all of them. Scopes beyond
   * the permissions issue nothing and name them.
   */
  issue(
    consumer: SeedConsumer,
    requested: string[],
  ):
    | { accessToken: string; scopes: string[]; expiresIn: number }
    | { beyond: string[] } {
    const beyond = requested.filter(s => !consumer.permissions.includes(s));
    if (beyond.length > 0) {
      return { beyond };
    }
    const scopes =
      requested.length > 0
        ? [...new Set(requested)]
        : [...consumer.permissions];
    const accessToken = randomBytes(48).toString('base64url');
    const expiresIn = this.options.accessTokenTtlSeconds;
    this.tokens.set(accessToken, {
      clientId: consumer.key,
      scopes,
      expiresAt: this.options.now() + expiresIn * 1000,
    });
    return { accessToken, scopes: [...scopes], expiresIn };
  }

  lookup(token: string): ConsumerTokenLookup {
    const record = this.tokens.get(token);
    if (!record) {
      return { status: 'unknown' };
    }
    if (record.expiresAt <= this.options.now()) {
      return { status: 'expired' };
    }
    return {
      status: 'valid',
      grant: { clientId: record.clientId, scopes: [...record.scopes] },
    };
  }

  /** Every token issued so far answers 401 "Access token expired.". */
  expireAll(): void {
    const past = this.options.now() - 1;
    for (const record of this.tokens.values()) {
      record.expiresAt = Math.min(record.expiresAt, past);
    }
  }
}

/**
 * Answers `grant_type=client_credentials` for an authenticated consumer:
 * `{access_token, scope, expires_in, token_type, state: "client_credentials"}`,
 * without a refresh token (RFC 6749 section 4.4.3), or 400 `invalid_scope`
 * for scopes beyond the consumer's permissions.
 */
export function answerClientCredentials(
  ex: Exchange,
  store: ConsumerTokenStore,
  consumer: SeedConsumer,
  requestedScopes: string[],
  legacyScopesField: boolean,
): void {
  const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' };
  const token = store.issue(consumer, requestedScopes);
  if ('beyond' in token) {
    sendJson(
      ex,
      400,
      {
        error: 'invalid_scope',
        error_description: `These requested scopes are beyond the OAuth client's own scopes: ${token.beyond.join(
          ' ',
        )}`,
      },
      noStore,
    );
    return;
  }
  const scope = token.scopes.join(' ');
  sendJson(
    ex,
    200,
    {
      access_token: token.accessToken,
      ...(legacyScopesField ? { scopes: scope } : { scope }),
      expires_in: token.expiresIn,
      token_type: 'bearer',
      state: 'client_credentials',
    },
    noStore,
  );
}
