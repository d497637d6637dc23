import {
  AuthService,
  CacheService,
  LoggerService,
} from '@backstage/backend-plugin-api';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import { InputError } from '@backstage/errors';
import {
  createOAuthAuthenticator,
  OAuthAuthenticator,
  OAuthAuthenticatorResult,
} from '@backstage/plugin-auth-node';
import type { Request } from 'express';
import { Strategy as OAuth2Strategy } from 'passport-oauth2';
import { CatalogMembership } from './catalogMembership';
import { BitbucketClient } from './client';
import {
  BitbucketProviderSettings,
  readBitbucketProviderSettings,
} from './config';
import {
  preconnectForProfileRound,
  preconnectForSignIn,
  PreconnectPlan,
  readPreconnectPlan,
} from './connections';
import { Deadline } from './deadline';
import { authorizeCallbackError } from './errors';
import { BitbucketProfile } from './profile';
import { CatalogFirstProfileSource } from './membershipSource';
import { ProfileSource } from './profileSource';
import { RateBudget } from './rateBudget';
import { Sessions } from './sessions';
import { SessionStore } from './sessionStore';
import { BitbucketTokenClient, BitbucketTokenResponse } from './token';

/** What `initialize` builds once per environment. */
interface BitbucketAuthenticatorContext {
  settings: BitbucketProviderSettings;
  strategy: OAuth2Strategy;
  tokenClient: BitbucketTokenClient;
  profiles: ProfileSource;
  sessions: Sessions;
  /** Connections opened ahead of the calls (src/connections.ts). */
  preconnect: PreconnectPlan;
}

/** Services the authenticator uses when the module provides them. */
export interface BitbucketAuthenticatorOptions {
  /**
   * Keeps sessions between refreshes and across replicas (encrypted; see
   * `profileCacheTtl` and `refreshGracePeriod`). Without it, a per-process
   * store serves.
   */
  cache?: CacheService;
  /** Receives the audit lines of refused sign-ins and budget warnings. */
  logger?: LoggerService;
  /** Fetch the profile calls one after the other (benchmarks only). */
  sequentialProfileFetch?: boolean;
  /**
   * The catalog and the module's own credentials for it: with
   * `workspaceMembershipSource: catalog` (the default), the org import's
   * Groups answer the workspace check first.
   */
  catalog?: { service: CatalogService; auth: AuthService };
  /** How long one catalog answer serves every session (tests: 0). */
  catalogReuseMs?: number;
}

/**
 * The one place where the membership source is chosen: the catalog first
 * (when configured, with an allow-list and a catalog), else Bitbucket.
 */
function createProfileSource(
  client: BitbucketClient,
  settings: BitbucketProviderSettings,
  options: BitbucketAuthenticatorOptions,
): ProfileSource {
  const { logger, catalog } = options;
  if (settings.membershipSource !== 'catalog' || !settings.workspaces.allowed) {
    return new ProfileSource({ client, settings, logger });
  }
  if (!catalog) {
    logger?.warn(
      "Bitbucket provider: workspaceMembershipSource is 'catalog' but this authenticator has no catalog service; the workspace check asks Bitbucket. Use the module (it passes the catalog), or set workspaceMembershipSource: bitbucket.",
    );
    return new ProfileSource({ client, settings, logger });
  }
  return new CatalogFirstProfileSource({
    client,
    settings,
    logger,
    catalog: new CatalogMembership({
      catalog: catalog.service,
      auth: catalog.auth,
      settings,
      logger,
      reuseMs: options.catalogReuseMs,
    }),
  });
}

/** The scopes every sign-in needs: `/2.0/user` and `/2.0/user/emails`. */
export const REQUIRED_SCOPES = ['account', 'email'];

function createStrategy(
  settings: ReturnType<typeof readBitbucketProviderSettings>,
  callbackUrl: string,
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
    // passport-oauth2 takes any request with ?code= or ?error= for the
    // callback: on /start it would redeem the code, or fail with an HTTP 500.
    // The start step reads neither.
    const startReq = Object.create(req, {
      query: { value: {} },
      body: { value: undefined },
    });
    run.authenticate(startReq, options);
  });
}

/**
 * Runs the strategy's callback step: `?code=` → token, or `?error=` → error.
 * passport-oauth2 checks the callback (`?error=`, a missing code) and would
 * exchange the code through node-oauth, which has no timeout and reads only
 * `scope`: the exchange goes through {@link BitbucketTokenClient} instead,
 * within the sign-in's deadline.
 */
function runCallback(
  strategy: OAuth2Strategy,
  req: Request,
  tokenClient: BitbucketTokenClient,
  deadline: Deadline,
): Promise<BitbucketTokenResponse> {
  return new Promise((resolve, reject) => {
    const run = Object.create(strategy);
    run._oauth2 = Object.create((strategy as any)._oauth2);
    run._oauth2.getOAuthAccessToken = (
      code: string,
      params: { redirect_uri?: string },
      callback: (
        err: unknown,
        accessToken?: string,
        refreshToken?: string,
        result?: BitbucketTokenResponse,
      ) => void,
    ) => {
      tokenClient.exchangeCode(code, params?.redirect_uri, deadline).then(
        token => callback(null, token.accessToken, token.refreshToken, token),
        error => callback(error),
      );
    };
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
 * Creates the Bitbucket Cloud OAuth 2.0 authenticator with the services of
 * the backend: the profile cache and the logger.
 */
export function createBitbucketAuthenticator(
  options: BitbucketAuthenticatorOptions = {},
): OAuthAuthenticator<unknown, BitbucketProfile> {
  const { cache, logger } = options;
  return createOAuthAuthenticator<
    BitbucketAuthenticatorContext,
    BitbucketProfile
  >({
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
      const client = new BitbucketClient({
        apiBaseUrl: settings.apiBaseUrl,
        timeoutMs: settings.requestTimeoutMs,
        budget: new RateBudget(settings.clientId, logger),
        sequential: options.sequentialProfileFetch,
      });
      const profiles = createProfileSource(client, settings, options);
      const preconnect = readPreconnectPlan(config, settings, {
        sequentialProfileFetch: options.sequentialProfileFetch,
      });
      return {
        settings,
        tokenClient,
        strategy: createStrategy(settings, callbackUrl),
        profiles,
        sessions: new Sessions({
          store: new SessionStore(cache, settings.clientId, {
            keepSessions: settings.profileCacheTtlMs > 0,
            graceMs: settings.refreshGracePeriodMs,
            // outlives every record of a session and every refresh in flight
            endedMs:
              Math.max(settings.identityCacheTtlMs, 2 * 60 * 60 * 1000) +
              settings.signInTimeoutMs,
          }),
          tokens: tokenClient,
          profiles,
          settings,
          // the profile will be fetched: open its connections during the token call
          onProfileRoundAhead: () => preconnectForProfileRound(preconnect),
          logger,
        }),
        preconnect,
      };
    },
    async start(input, ctx) {
      // the callback's connections open while the user is on the consent page
      preconnectForSignIn(ctx.preconnect);
      return runStart(ctx.strategy, input.req, {
        scope: input.scope,
        state: input.state,
      });
    },
    async authenticate(
      input,
      ctx,
    ): Promise<OAuthAuthenticatorResult<BitbucketProfile>> {
      const deadline = new Deadline(ctx.settings.signInTimeoutMs);
      // none left from /start (a slow consent): open them during the token call
      preconnectForProfileRound(ctx.preconnect);
      const token = await runCallback(
        ctx.strategy,
        input.req,
        ctx.tokenClient,
        deadline,
      );
      const { profile: fullProfile, fetchedAt } = await ctx.profiles.forSignIn(
        token.accessToken,
        deadline,
      );
      const session = await ctx.sessions.started(token, fullProfile, fetchedAt);
      return { fullProfile, session };
    },
    async refresh(
      input,
      ctx,
    ): Promise<OAuthAuthenticatorResult<BitbucketProfile>> {
      return ctx.sessions.refresh(input.refreshToken, input.scope);
    },
    async logout(input, ctx) {
      // ends the session here and, by one rotation, at Bitbucket (sessions.ts)
      await ctx.sessions.ended(input.refreshToken);
    },
  });
}

/**
 * The Bitbucket Cloud OAuth 2.0 authenticator: authorization code flow with
 * `passport-oauth2`, configurable URLs, the profile from `/2.0/user` and
 * `/2.0/user/emails` (the primary and confirmed address), workspace access
 * control, and rotating refresh tokens. Without a cache: the module itself
 * uses one made with the backend's cache service.
 *
 * @public
 */
export const bitbucketAuthenticator: OAuthAuthenticator<
  unknown,
  BitbucketProfile
> = createBitbucketAuthenticator();
