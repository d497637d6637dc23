import {
  AuthProviderFactory,
  AuthProviderRouteHandlers,
  commonSignInResolvers,
  createOAuthRouteHandlers,
  OAuthEnvironmentHandler,
  SignInResolverFactory,
} from '@backstage/plugin-auth-node';
import { CacheService } from '@backstage/backend-plugin-api';
import {
  BitbucketAuthenticatorOptions,
  createBitbucketAuthenticator,
} from './authenticator';
import { describeAllowed, readBitbucketProviderSettings } from './config';
import { readPreconnectPlan } from './connections';
import { bitbucketSignInResolvers } from './resolvers';
import { guardRouteHandlers } from './routeGuards';
import { readBitbucketSignInResolver } from './signIn';

/** Every resolver name accepted in `signIn.resolvers`. */
export const signInResolverFactories: Record<string, SignInResolverFactory> = {
  ...commonSignInResolvers,
  ...bitbucketSignInResolvers,
};

/**
 * The `bitbucket` provider: auth-node's OAuth route handlers for each
 * environment under `auth.providers.bitbucket`, with the config validated
 * up front (naming the key at fault) and sign-in errors that name the
 * account. This is what `createOAuthProviderFactory` composes, with the
 * sign-in resolver chain replaced by {@link readBitbucketSignInResolver}.
 */
export function createBitbucketProviderFactory(
  options: {
    cache?: CacheService;
    sequentialProfileFetch?: boolean;
    catalog?: BitbucketAuthenticatorOptions['catalog'];
    catalogReuseMs?: number;
  } = {},
): AuthProviderFactory {
  return ctx => {
    const authenticator = createBitbucketAuthenticator({
      cache: options.cache,
      logger: ctx.logger,
      sequentialProfileFetch: options.sequentialProfileFetch,
      catalog: options.catalog,
      catalogReuseMs: options.catalogReuseMs,
    });
    const handlers = new Map<string, AuthProviderRouteHandlers>();
    for (const env of ctx.config.keys()) {
      const envConfig = ctx.config.getConfig(env);
      const path = `auth.providers.${ctx.providerId}.${env}`;
      const settings = readBitbucketProviderSettings(envConfig, path);
      // validated here, where an error can name the full key
      readPreconnectPlan(envConfig, settings, { path });
      const signInResolver = readBitbucketSignInResolver(
        envConfig,
        signInResolverFactories,
        path,
        { workspaces: settings.workspaces, logger: ctx.logger },
      );
      ctx.logger.info(
        `Bitbucket provider '${env}': authorize at ${
          settings.authorizationUrl
        }, REST at ${settings.apiBaseUrl}, allowed workspaces: ${
          settings.workspaces.allowed?.map(describeAllowed).join(', ') ?? 'any'
        }, workspace membership: ${
          settings.workspaces.allowed
            ? settings.membershipSource
            : 'not checked'
        }, profile cache: ${
          settings.profileCacheTtlMs / 1000
        } s, sign-in resolvers: ${
          envConfig
            .getOptionalConfigArray('signIn.resolvers')
            ?.map(r => r.getOptionalString('resolver'))
            .join(', ') || 'none (sign-in disabled)'
        }`,
      );
      handlers.set(
        env,
        createOAuthRouteHandlers({
          authenticator,
          // /2.0/user/workspaces needs Workspace membership: Read
          additionalScopes: settings.needsWorkspaces ? ['team'] : undefined,
          appUrl: ctx.appUrl,
          baseUrl: ctx.baseUrl,
          config: envConfig,
          isOriginAllowed: ctx.isOriginAllowed,
          cookieConfigurer: ctx.cookieConfigurer,
          providerId: ctx.providerId,
          resolverContext: ctx.resolverContext,
          signInResolver,
        }),
      );
    }
    return guardRouteHandlers(
      new OAuthEnvironmentHandler(handlers),
      ctx.isOriginAllowed,
    );
  };
}
