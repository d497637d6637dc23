import {
  createBackendModule,
  SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import {
  catalogProcessingExtensionPoint,
  EntityProvider,
  EntityProviderMutation,
} from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { startEmulator } from '@internal/bitbucket-cloud-emulator';
import catalogModuleBitbucketCloudOrg, {
  bitbucketCloudOrgEntityProviderTransformsExtensionPoint,
  defaultBitbucketCloudUserTransformer,
} from './index';
import type { BitbucketCloudOrgEntityProvider } from './provider';
import { ACME, CONSUMER, member } from './__testUtils__/world';

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

  it('runs the transformer another module set through the extension point', async () => {
    const emulator = await startEmulator({
      seed: {
        consumers: [
          {
            key: CONSUMER.key,
            secret: CONSUMER.secret,
            callbackUrl: 'http://localhost',
            permissions: ['team'],
            workspaces: ['acme'],
          },
        ],
        users: [member(1, [ACME])],
      },
    });
    try {
      const emails = createBackendModule({
        pluginId: 'catalog',
        moduleId: 'my-emails',
        register(reg) {
          reg.registerInit({
            deps: {
              org: bitbucketCloudOrgEntityProviderTransformsExtensionPoint,
            },
            async init({ org }) {
              org.setUserTransformer(async (m, ctx) => {
                const user = await defaultBitbucketCloudUserTransformer(m, ctx);
                user!.spec.profile!.email = `${m.nickname}@corp.example`;
                return user;
              });
            },
          });
        },
      });
      const { providers } = await start(
        {
          catalog: {
            providers: {
              bitbucketCloudOrg: {
                production: {
                  ...BLOCK,
                  clientId: CONSUMER.key,
                  clientSecret: CONSUMER.secret,
                  baseUrl: emulator.url,
                  apiBaseUrl: emulator.apiBaseUrl,
                },
              },
            },
          },
        },
        // the catalog the provider reads other sources' Users from
        [emails, catalogServiceMock.factory()],
      );
      const mutations: EntityProviderMutation[] = [];
      const provider = providers[0] as BitbucketCloudOrgEntityProvider;
      await provider.connect({
        applyMutation: async m => {
          mutations.push(m);
        },
        refresh: async () => {},
      });
      expect(await provider.refresh()).toBe(true);
      const entities =
        mutations[0].type === 'full' ? mutations[0].entities : [];
      expect(
        entities.map(e => [e.entity.kind, (e.entity.spec as any).profile]),
      ).toEqual([
        ['Group', { displayName: 'ACME Corp' }],
        [
          'User',
          {
            displayName: 'Member 1',
            email: 'member1@corp.example',
            picture: `${emulator.url}/account/00000000-0000-4000-8000-000000000001/avatar.svg`,
          },
        ],
      ]);
    } finally {
      await emulator.close();
    }
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
