import { LoggerService } from '@backstage/backend-plugin-api';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { Config } from '@backstage/config';
import { InputError, NotFoundError } from '@backstage/errors';
import {
  AuthResolverContext,
  OAuthAuthenticatorResult,
  SignInResolver,
  SignInResolverFactory,
} from '@backstage/plugin-auth-node';
import { auditReason } from './audit';
import { WorkspaceSettings } from './config';
import { BitbucketProfile } from './profile';
import { workspaceCheck, workspaceOwnershipRefs } from './workspaces';

type Result = OAuthAuthenticatorResult<BitbucketProfile>;

/** What the sign-in resolver chain needs besides the config. */
export interface SignInChainOptions {
  workspaces?: WorkspaceSettings;
  logger?: LoggerService;
}

const merge = (a: string[], b: string[]) => [...new Set([...a, ...b])];

/**
 * The resolver context with the workspace groups added to every issued
 * identity's ownership, after the catalog's `memberOf`.
 */
function withOwnership(
  ctx: AuthResolverContext,
  extra: string[],
  issued: { sub?: string },
): AuthResolverContext {
  const wrapped: AuthResolverContext = {
    findCatalogUser: query => ctx.findCatalogUser(query),
    async resolveOwnershipEntityRefs(entity) {
      const { ownershipEntityRefs } = await ctx.resolveOwnershipEntityRefs(
        entity,
      );
      return { ownershipEntityRefs: merge(ownershipEntityRefs, extra) };
    },
    issueToken(params) {
      const { sub, ent = [sub] } = params.claims;
      issued.sub = sub;
      return ctx.issueToken({
        ...params,
        claims: { ...params.claims, ent: merge(ent, extra) },
      });
    },
    async signInWithCatalogUser(query, options) {
      try {
        const { entity } = await wrapped.findCatalogUser(query);
        const { ownershipEntityRefs } =
          await wrapped.resolveOwnershipEntityRefs(entity);
        return await wrapped.issueToken({
          claims: { sub: stringifyEntityRef(entity), ent: ownershipEntityRefs },
        });
      } catch (error) {
        const fallback = options?.dangerousEntityRefFallback?.entityRef;
        if ((error as Error)?.name !== 'NotFoundError' || !fallback) {
          throw error;
        }
        const ref = stringifyEntityRef(
          typeof fallback === 'string'
            ? (fallback as any)
            : { kind: 'User', namespace: 'default', ...fallback },
        );
        return wrapped.issueToken({ claims: { sub: ref, ent: [ref] } });
      }
    },
  };
  return wrapped;
}

/**
 * Reads `signIn.resolvers` of one environment, like auth-node's
 * `readDeclarativeSignInResolver` (same config shape, tried in order, a
 * `NotFoundError` lets the next one try), but when none matches the error
 * names the account and what each resolver looked for, so that the user and
 * the admin know which catalog entry to add. It also adds the workspace
 * groups to the ownership, and writes one audit line per decision.
 */
export function readBitbucketSignInResolver(
  config: Config,
  factories: Record<string, SignInResolverFactory>,
  path: string,
  options: SignInChainOptions = {},
): SignInResolver<Result> | undefined {
  const { workspaces, logger } = options;
  const entries = config.getOptionalConfigArray('signIn.resolvers') ?? [];
  const resolvers = entries.map((entry, index) => {
    const name = entry.getOptionalString('resolver');
    const where = `${path}.signIn.resolvers[${index}]`;
    if (!name || !Object.hasOwn(factories, name)) {
      throw new InputError(
        `Sign-in resolver ${
          name ? `'${name}'` : '(no name)'
        } at '${where}.resolver' is not available. Use one of: ${Object.keys(
          factories,
        ).join(', ')}.`,
      );
    }
    const { resolver: _name, ...resolverOptions } =
      entry.get<Record<string, unknown>>();
    try {
      return {
        name,
        resolver: factories[name](
          Object.keys(resolverOptions).length > 0 ? resolverOptions : undefined,
        ) as SignInResolver<Result>,
      };
    } catch (error) {
      throw new InputError(`At '${where}': ${(error as Error).message}`);
    }
  });
  if (resolvers.length === 0) return undefined;

  return async (info, ctx) => {
    const p = info.result.fullProfile;
    const audit = (fields: Record<string, unknown>) =>
      logger?.info('Bitbucket sign-in decision', {
        providerUser: p.uuid,
        accountId: p.accountId,
        workspaceCheck: workspaces
          ? workspaceCheck(workspaces)
          : 'not configured',
        ...fields,
      });
    const extra = workspaces ? workspaceOwnershipRefs(p, workspaces) : [];
    const reasons: string[] = [];
    const auditReasons: string[] = [];
    for (const { name, resolver } of resolvers) {
      const issued: { sub?: string } = {};
      try {
        const result = await resolver(info, withOwnership(ctx, extra, issued));
        audit({
          resolver: name,
          outcome: 'signed-in',
          userEntityRef: issued.sub,
        });
        return result;
      } catch (error) {
        if ((error as Error)?.name !== 'NotFoundError') {
          audit({
            resolver: name,
            outcome: 'refused',
            reason: auditReason(error),
          });
          throw error;
        }
        reasons.push(`${name}: ${(error as Error).message}`);
        auditReasons.push(`${name}: ${auditReason(error)}`);
      }
    }
    const who = `${p.displayName ?? p.nickname ?? 'unknown'} (${p.uuid})`;
    const message = `Signed in to Bitbucket as ${who}, but no matching User was found in the Backstage catalog. Tried ${reasons.join(
      '; ',
    )}. Ask your Backstage admin to add a User entity for this account, e.g. with the annotation bitbucket.org/user-id: '${
      p.uuid
    }'.`;
    audit({
      resolver: resolvers.map(r => r.name).join(', '),
      outcome: 'refused',
      reason: `no matching User; tried ${auditReasons.join('; ')}`,
    });
    throw new NotFoundError(message);
  };
}
