import {
  coreServices,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import { authProvidersExtensionPoint } from '@backstage/plugin-auth-node';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { createBitbucketProviderFactory } from './provider';

/** The module with internal options (tests: `catalogReuseMs: 0`). */
export function createBitbucketProviderModule(
  options: { catalogReuseMs?: number } = {},
) {
  return createBackendModule({
    pluginId: 'auth',
    moduleId: 'bitbucket-provider',
    register(reg) {
      reg.registerInit({
        deps: {
          providers: authProvidersExtensionPoint,
          cache: coreServices.cache,
          catalog: catalogServiceRef,
          auth: coreServices.auth,
        },
        async init({ providers, cache, catalog, auth }) {
          providers.registerProvider({
            providerId: 'bitbucket',
            factory: createBitbucketProviderFactory({
              cache,
              catalog: { service: catalog, auth },
              catalogReuseMs: options.catalogReuseMs,
            }),
          });
        },
      });
    },
  });
}

/**
 * Registers the `bitbucket` sign-in provider with the auth backend.
 *
 * @public
 */
export const authModuleBitbucketProvider = createBitbucketProviderModule();
