import {
  createBackendModule,
  SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { EntityProvider } from '@backstage/plugin-catalog-node';
import { catalogProcessingExtensionPoint } from '@backstage/plugin-catalog-node';
import catalogModuleBitbucketCloudOrg, {
  bitbucketCloudOrgEntityProviderTransformsExtensionPoint,
} from './index';

async function start(config: object, extra: any[] = []) {
  const providers: EntityProvider[] = [];
  const schedules: SchedulerServiceTaskScheduleDefinition[] = [];
  const scheduler = mockServices.scheduler.mock({
    createScheduledTaskRunner(schedule) {
      schedules.push(schedule);
      return { run: jest.fn() };
    },
  });
  await startTestBackend({
    extensionPoints: [
      [
        catalogProcessingExtensionPoint,
        { addEntityProvider: (...p: any[]) => providers.push(...p.flat()) },
      ],
    ],
    features: [
      catalogModuleBitbucketCloudOrg,
      mockServices.rootConfig.factory({ data: config }),
      scheduler.factory,
      ...extra,
    ],
  });
  return { providers, schedules };
}

const BLOCK = {
  workspaces: ['acme'],
  clientId: 'k',
  clientSecret: 's',
};

describe('catalogModuleBitbucketCloudOrg', () => {
  it('registers no provider without catalog.providers.bitbucketCloudOrg', async () => {
    const { providers, schedules } = await start({
      catalog: { providers: {} },
    });
    expect(providers).toEqual([]);
    expect(schedules).toEqual([]);
  });

  it('registers one provider per id, on its schedule or the default one', async () => {
    const { providers, schedules } = await start({
      catalog: {
        providers: {
          bitbucketCloudOrg: {
            production: {
              ...BLOCK,
              schedule: {
                frequency: { hours: 1 },
                timeout: { minutes: 10 },
              },
            },
            contractors: BLOCK,
          },
        },
      },
    });
    expect(providers.map(p => p.getProviderName())).toEqual([
      'BitbucketCloudOrgEntityProvider:production',
      'BitbucketCloudOrgEntityProvider:contractors',
    ]);
    expect(schedules).toEqual([
      { frequency: { hours: 1 }, timeout: { minutes: 10 } },
      {
        frequency: { minutes: 30 },
        timeout: { minutes: 3 },
        initialDelay: { seconds: 15 },
      },
    ]);
  });

  it('stops the start-up on a config error, naming the key', async () => {
    await expect(
      start({
        catalog: {
          providers: { bitbucketCloudOrg: { production: { ...BLOCK, x: 1 } } },
        },
      }),
    ).rejects.toThrow(
      "Unknown config key 'catalog.providers.bitbucketCloudOrg.production.x'",
    );
  });

  it('lets another module set each transformer once', async () => {
    const twice = createBackendModule({
      pluginId: 'catalog',
      moduleId: 'my-transformers',
      register(reg) {
        reg.registerInit({
          deps: {
            org: bitbucketCloudOrgEntityProviderTransformsExtensionPoint,
          },
          async init({ org }) {
            org.setUserTransformer(async () => undefined);
            org.setUserTransformer(async () => undefined);
          },
        });
      },
    });
    await expect(
      start({ catalog: { providers: {} } }, [twice]),
    ).rejects.toThrow(
      'The Bitbucket Cloud org user transformer may only be set once',
    );
  });
});
