import {
  coreServices,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import {
  catalogProcessingExtensionPoint,
  catalogServiceRef,
} from '@backstage/plugin-catalog-node';
import { readProviderSettings } from './config';
import {
  bitbucketCloudOrgEntityProviderTransformsExtensionPoint,
  TransformerSlots,
} from './extensionPoint';
import { BitbucketCloudOrgEntityProvider } from './provider';

/**
 * Registers one Bitbucket Cloud org entity provider per block under
 * `catalog.providers.bitbucketCloudOrg`, and none without that config.
 *
 * @public
 */
export const catalogModuleBitbucketCloudOrg = createBackendModule({
  pluginId: 'catalog',
  moduleId: 'bitbucket-cloud-org',
  register(reg) {
    const transformers = new TransformerSlots();
    reg.registerExtensionPoint(
      bitbucketCloudOrgEntityProviderTransformsExtensionPoint,
      transformers,
    );
    reg.registerInit({
      deps: {
        catalog: catalogProcessingExtensionPoint,
        catalogService: catalogServiceRef,
        auth: coreServices.auth,
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        scheduler: coreServices.scheduler,
      },
      async init({ catalog, catalogService, auth, config, logger, scheduler }) {
        for (const settings of readProviderSettings(config)) {
          catalog.addEntityProvider(
            new BitbucketCloudOrgEntityProvider({
              settings,
              logger,
              taskRunner: scheduler.createScheduledTaskRunner(
                settings.schedule,
              ),
              transformers: transformers.get(),
              catalog: catalogService,
              auth,
            }),
          );
        }
      },
    });
  },
});
