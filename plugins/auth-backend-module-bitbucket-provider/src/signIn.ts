import { Config } from '@backstage/config';
import { InputError, NotFoundError } from '@backstage/errors';
import {
  OAuthAuthenticatorResult,
  SignInResolver,
  SignInResolverFactory,
} from '@backstage/plugin-auth-node';
import { BitbucketProfile } from './profile';

type Result = OAuthAuthenticatorResult<BitbucketProfile>;

/**
 * Reads `signIn.resolvers` of one environment, like auth-node's
 * `readDeclarativeSignInResolver` (same config shape, tried in order, a
 * `NotFoundError` lets the next one try), but when none matches the error
 * names the account and what each resolver looked for, so that the user and
 * the admin know which catalog entry to add.
 */
export function readBitbucketSignInResolver(
  config: Config,
  factories: Record<string, SignInResolverFactory>,
  path: string,
): SignInResolver<Result> | undefined {
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
    const { resolver: _name, ...options } =
      entry.get<Record<string, unknown>>();
    try {
      return {
        name,
        resolver: factories[name](
          Object.keys(options).length > 0 ? options : undefined,
        ) as SignInResolver<Result>,
      };
    } catch (error) {
      throw new InputError(`At '${where}': ${(error as Error).message}`);
    }
  });
  if (resolvers.length === 0) return undefined;

  return async (info, ctx) => {
    const reasons: string[] = [];
    for (const { name, resolver } of resolvers) {
      try {
        return await resolver(info, ctx);
      } catch (error) {
        if ((error as Error)?.name !== 'NotFoundError') throw error;
        reasons.push(`${name}: ${(error as Error).message}`);
      }
    }
    const p = info.result.fullProfile;
    const who = `${p.displayName ?? p.nickname ?? 'unknown'} (${p.uuid})`;
    throw new NotFoundError(
      `Signed in to Bitbucket as ${who}, but no matching User was found in the Backstage catalog. Tried ${reasons.join(
        '; ',
      )}. Ask your Backstage admin to add a User entity for this account, e.g. with the annotation bitbucket.org/user-id: '${
        p.uuid
      }'.`,
    );
  };
}
