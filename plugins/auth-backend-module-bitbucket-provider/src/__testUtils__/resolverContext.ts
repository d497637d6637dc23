import { Entity, stringifyEntityRef } from '@backstage/catalog-model';
import { InMemoryCatalogClient } from '@backstage/catalog-client/testUtils';
import { ConflictError, NotFoundError } from '@backstage/errors';
import { AuthResolverContext, TokenParams } from '@backstage/plugin-auth-node';
import { BitbucketProfile } from '../profile';

/**
 * An AuthResolverContext over an in-memory catalog (which matches filters
 * case-insensitively, like the real one) that records the issued claims.
 */
export function createResolverContext(entities: Entity[]) {
  const catalog = new InMemoryCatalogClient({ entities });
  const issued: TokenParams['claims'][] = [];
  const ctx: AuthResolverContext = {
    async issueToken(params) {
      issued.push(params.claims);
      return { token: `token-for-${params.claims.sub}` };
    },
    async findCatalogUser(query) {
      let items: Entity[];
      if ('entityRef' in query) {
        const ref =
          typeof query.entityRef === 'string'
            ? query.entityRef
            : stringifyEntityRef({
                kind: query.entityRef.kind ?? 'User',
                namespace: query.entityRef.namespace ?? 'default',
                name: query.entityRef.name,
              });
        const entity = await catalog.getEntityByRef(ref);
        items = entity ? [entity] : [];
      } else if ('filter' in query) {
        const filter = [query.filter]
          .flat()
          .map(f => ({ kind: 'user', ...(f as object) }));
        items = (await catalog.getEntities({ filter })).items;
      } else {
        throw new Error('annotations queries are not used by this module');
      }
      if (items.length > 1) {
        throw new ConflictError('User lookup resulted in multiple matches');
      }
      if (!items.length) throw new NotFoundError('User not found');
      return { entity: items[0] };
    },
    async signInWithCatalogUser() {
      throw new Error('not used by this module');
    },
    async resolveOwnershipEntityRefs(entity) {
      const groups = ((entity.spec as any)?.memberOf ?? []).map(
        (g: string) => `group:default/${g}`,
      );
      return { ownershipEntityRefs: [stringifyEntityRef(entity), ...groups] };
    },
  };
  return { ctx, issued };
}

/** A catalog User entity. */
export function user(
  name: string,
  annotations: Record<string, string> = {},
  spec: Record<string, unknown> = {},
): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'User',
    metadata: { name, namespace: 'default', annotations },
    spec: { memberOf: [], ...spec },
  };
}

/** The sign-in info a resolver receives for a Bitbucket profile. */
export function signInInfo(profile: Partial<BitbucketProfile> = {}) {
  const fullProfile: BitbucketProfile = {
    uuid: '{0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01}',
    accountId: '557058:0b0c5e1e-9f1d-4c2a-8a55-2f1a1b7e3c01',
    nickname: 'jdoe',
    username: 'jdoe',
    displayName: 'Jane Doe',
    email: 'jane.doe@example.com',
    emails: [
      { email: 'jane.doe@example.com', isPrimary: true, isConfirmed: true },
    ],
    ...profile,
  };
  return {
    profile: { email: fullProfile.email, displayName: fullProfile.displayName },
    result: {
      fullProfile,
      session: {
        accessToken: 'at',
        tokenType: 'bearer',
        scope: 'account email',
      },
    },
  };
}
