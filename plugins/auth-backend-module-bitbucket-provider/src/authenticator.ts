import { InputError } from '@backstage/errors';
import {
  createOAuthAuthenticator,
  OAuthAuthenticator,
  OAuthAuthenticatorResult,
  OAuthSession,
} from '@backstage/plugin-auth-node';
import type { Request } from 'express';
import { Strategy as OAuth2Strategy } from 'passport-oauth2';
import { BitbucketClient } from './client';
import { readBitbucketProviderSettings } from './config';
import { authorizeCallbackError } from './errors';
import { BitbucketProfile } from './profile';
import { BitbucketTokenClient, BitbucketTokenResponse } from './token';

/** What `initialize` builds once per environment. */
interface BitbucketAuthenticatorContext {
  strategy: OAuth2Strategy;
  tokenClient: BitbucketTokenClient;
  client: BitbucketClient;
}

/** The scopes every sign-in needs: `/2.0/user` and `/2.0/user/emails`. */
export const REQUIRED_SCOPES = ['account', 'email'];

function toSession(
  token: BitbucketTokenResponse,
  previousRefreshToken?: string,
): OAuthSession {
  return {
    accessToken: token.accessToken,
    tokenType: token.tokenType,
    scope: token.scope,
    expiresInSeconds: token.expiresInSeconds,
    // Bitbucket rotates refresh tokens (CHANGE-3052); before May 2026 it
    // returned the same one, and an answer without one keeps the old.
    refreshToken: token.refreshToken ?? previousRefreshToken,
  };
}

function createStrategy(
  settings: ReturnType<typeof readBitbucketProviderSettings>,
  callbackUrl: string,
  tokenClient: BitbucketTokenClient,
): OAuth2Strategy {
  const strategy = new OAuth2Strategy(
    {
      clientID: settings.clientId,
      clientSecret: settings.clientSecret,
      callbackURL: callbackUrl,
      authorizationURL: settings.authorizationUrl,
      tokenURL: settings.tokenUrl,
      // The profile is fetched by BitbucketClient: user and emails in parallel.
      skipUserProfile: true,
      passReqToCallback: false,
    },
    (
      _accessToken: string,
      _refreshToken: string,
      token: BitbucketTokenResponse,
      _profile: unknown,
      done: (err: unknown, user?: BitbucketTokenResponse) => void,
    ) => done(undefined, token),
  );
  // passport-oauth2 runs the callback (state, ?error=, code) and exchanges
  // the code through node-oauth, which has no timeout and reads only `scope`.
  // Its exchange is routed through BitbucketTokenClient instead.
  (strategy as any)._oauth2.getOAuthAccessToken = (
    code: string,
    params: { redirect_uri?: string },
    callback: (
      err: unknown,
      accessToken?: string,
      refreshToken?: string,
      result?: BitbucketTokenResponse,
    ) => void,
  ) => {
    tokenClient.exchangeCode(code, params?.redirect_uri).then(
      token => callback(null, token.accessToken, token.refreshToken, token),
      error => callback(error),
    );
  };
  return strategy;
}

/** Runs the strategy's redirect step: the authorize URL with our state. */
function runStart(
  strategy: OAuth2Strategy,
  req: Request,
  options: { scope: string; state: string },
): Promise<{ url: string; status?: number }> {
  return new Promise((resolve, reject) => {
    const run = Object.create(strategy);
    run.redirect = (url: string, status?: number) => resolve({ url, status });
    run.error = (error: Error) => reject(error);
    run.authenticate(req, options);
  });
}

/** Runs the strategy's callback step: `?code=` → token, or `?error=` → error. */
function runCallback(
  strategy: OAuth2Strategy,
  req: Request,
): Promise<BitbucketTokenResponse> {
  return new Promise((resolve, reject) => {
    const run = Object.create(strategy);
    run.success = (token: BitbucketTokenResponse) => resolve(token);
    // passport-oauth2 calls fail() for ?error=access_denied
    run.fail = (info?: { message?: string }) =>
      reject(authorizeCallbackError('access_denied', info?.message));
    run.error = (error: any) => {
      if (error?.name === 'AuthorizationError') {
        reject(authorizeCallbackError(String(error.code), error.message));
      } else if (error?.oauthError instanceof Error) {
        // our BitbucketTokenClient's error, wrapped by passport-oauth2
        reject(error.oauthError);
      } else {
        reject(error);
      }
    };
    run.redirect = () =>
      reject(
        new InputError(
          'The callback from Bitbucket carried neither a code nor an error. Start the sign-in again from the portal.',
        ),
      );
    run.authenticate(req, {});
  });
}

/**
 * The Bitbucket Cloud OAuth 2.0 authenticator: authorization code flow with
 * `passport-oauth2`, configurable URLs, the profile from `/2.0/user` and
 * `/2.0/user/emails` (the primary and confirmed address), and rotating
 * refresh tokens.
 *
 * @public
 */
export const bitbucketAuthenticator: OAuthAuthenticator<
  unknown,
  BitbucketProfile
> = createOAuthAuthenticator<BitbucketAuthenticatorContext, BitbucketProfile>({
  defaultProfileTransform: async ({ fullProfile }) => ({
    profile: {
      email: fullProfile.email,
      displayName: fullProfile.displayName,
      picture: fullProfile.avatarUrl,
    },
  }),
  scopes: {
    // Bitbucket narrows a token to the requested scopes, also on refresh
    // (backstage#22383): always ask for what the profile fetch needs, and
    // remember what was granted.
    required: REQUIRED_SCOPES,
    persist: true,
  },
  initialize({ callbackUrl, config }) {
    const settings = readBitbucketProviderSettings(config);
    const tokenClient = new BitbucketTokenClient({
      tokenUrl: settings.tokenUrl,
      clientId: settings.clientId,
      clientSecret: settings.clientSecret,
      timeoutMs: settings.requestTimeoutMs,
    });
    return {
      tokenClient,
      strategy: createStrategy(settings, callbackUrl, tokenClient),
      client: new BitbucketClient({
        apiBaseUrl: settings.apiBaseUrl,
        timeoutMs: settings.requestTimeoutMs,
      }),
    };
  },
  async start(input, ctx) {
    return runStart(ctx.strategy, input.req, {
      scope: input.scope,
      state: input.state,
    });
  },
  async authenticate(
    input,
    ctx,
  ): Promise<OAuthAuthenticatorResult<BitbucketProfile>> {
    const token = await runCallback(ctx.strategy, input.req);
    const fullProfile = await ctx.client.fetchProfile(token.accessToken);
    return { fullProfile, session: toSession(token) };
  },
  async refresh(
    input,
    ctx,
  ): Promise<OAuthAuthenticatorResult<BitbucketProfile>> {
    const token = await ctx.tokenClient.refresh(
      input.refreshToken,
      input.scope,
    );
    const fullProfile = await ctx.client.fetchProfile(token.accessToken);
    return { fullProfile, session: toSession(token, input.refreshToken) };
  },
});
