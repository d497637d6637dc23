import { LoggerService } from '@backstage/backend-plugin-api';
import { mockServices } from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import { ConfigReader } from '@backstage/config';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { JsonObject } from '@backstage/types';
import { EntityProviderMutation } from '@backstage/plugin-catalog-node';
import {
  BitbucketCloudEmulator,
  EmulatorOptions,
  SeedUser,
  SeedWorkspace,
  startEmulator,
} from '@internal/bitbucket-cloud-emulator';
import { readProviderSettings } from '../config';
import { TransformerSlots } from '../extensionPoint';
import { BitbucketCloudOrgEntityProvider } from '../provider';

export const CONSUMER = {
  key: 'org-consumer',
  secret: 'org-consumer-secret-Q4z',
};

export const ACME: SeedWorkspace = {
  slug: 'acme',
  name: 'ACME Corp',
  uuid: '{0e6a3d1f-8c52-4b97-a4e0-7f2b9c5d1e83}',
  role: 'member',
};
export const PLATFORM: SeedWorkspace = {
  slug: 'platform',
  name: 'Platform Team',
  uuid: '{5c9d2e7b-1f4a-4c63-9e08-b3a6d1f7c245}',
  role: 'member',
};
export const PARTNERS: SeedWorkspace = {
  slug: 'partners',
  name: 'Partners',
  uuid: '{a81f6c3e-4d29-4b75-8c1a-e09d7b3f5a62}',
  role: 'collaborator',
};

/** Member number `n`: uuid `{00000000-0000-4000-8000-<n, 12 digits>}`. */
export function member(n: number, workspaces: SeedWorkspace[]): SeedUser {
  const digits = String(n).padStart(12, '0');
  return {
    uuid: `{00000000-0000-4000-8000-${digits}}`,
    accountId: `557058:member-${n}`,
    nickname: `member${n}`,
    displayName: `Member ${n}`,
    emails: [
      { email: `member${n}@example.com`, primary: true, confirmed: true },
    ],
    workspaces,
  };
}

/** The entity name of member `n`. */
export function memberName(n: number): string {
  return `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

/** One log line. */
export interface LogLine {
  level: string;
  message: string;
}

/** A logger that keeps every line, its children's included. */
export function captureLogger(lines: LogLine[]): LoggerService {
  const at = (level: string) => (message: string) => {
    lines.push({ level, message });
  };
  const logger: LoggerService = {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: () => logger,
  };
  return logger;
}

export interface ProviderWorld {
  emulator: BitbucketCloudEmulator;
  provider: BitbucketCloudOrgEntityProvider;
  /**
   * Entities of other sources in the catalog the provider reads (the last
   * mutation's entities are there too).
   */
  others: Entity[];
  /**
   * A new provider on the same catalog and emulator, as after a restart (its
   * memory empty), its config block changed by `provider`.
   */
  restart(provider?: JsonObject): Promise<BitbucketCloudOrgEntityProvider>;
  /** The entities of the last mutation. */
  lastEntities(): Entity[];
  /** Every mutation the provider applied, in order. */
  mutations: EntityProviderMutation[];
  logs: LogLine[];
  /** The names of the entities of the last mutation, by kind. */
  lastNames(): { users: string[]; groups: string[] };
  stop(): Promise<void>;
}

/**
 * The provider, connected to a catalog connection that records mutations,
 * against a real emulator on loopback whose consumer reads `acme` and
 * `platform`.
 */
export async function startProviderWorld(options: {
  users: SeedUser[];
  workspaces?: string[];
  consumerPermissions?: string[];
  provider?: JsonObject;
  emulator?: EmulatorOptions;
  transformers?: (slots: TransformerSlots) => void;
  /** Entities of other sources, e.g. a hand-written User. */
  others?: Entity[];
}): Promise<ProviderWorld> {
  const emulator = await startEmulator({
    ...options.emulator,
    seed: {
      consumers: [
        {
          key: CONSUMER.key,
          secret: CONSUMER.secret,
          callbackUrl: 'http://localhost',
          permissions: options.consumerPermissions ?? ['account', 'team'],
          workspaces: ['acme', 'platform'],
        },
      ],
      users: options.users,
    },
  });
  const settingsWith = (extra?: JsonObject) =>
    readProviderSettings(
      new ConfigReader({
        catalog: {
          providers: {
            bitbucketCloudOrg: {
              test: {
                workspaces: options.workspaces ?? ['acme', 'platform'],
                clientId: CONSUMER.key,
                clientSecret: CONSUMER.secret,
                baseUrl: emulator.url,
                apiBaseUrl: emulator.apiBaseUrl,
                ...options.provider,
                ...extra,
              },
            },
          },
        },
      }),
    )[0];
  const slots = new TransformerSlots();
  options.transformers?.(slots);
  const logs: LogLine[] = [];
  const mutations: EntityProviderMutation[] = [];
  const others = [...(options.others ?? [])];
  const lastEntities = () => {
    const last = mutations[mutations.length - 1];
    return last?.type === 'full' ? last.entities.map(e => e.entity) : [];
  };
  // the catalog as the provider sees it: other sources' entities and what
  // it applied last (read through Backstage's in-memory catalog client)
  const catalog = {
    getEntities: (request: any, opts: any) =>
      catalogServiceMock({
        entities: JSON.parse(JSON.stringify([...others, ...lastEntities()])),
      }).getEntities(request, opts),
  };
  const newProvider = async (extra?: JsonObject) => {
    const p = new BitbucketCloudOrgEntityProvider({
      settings: settingsWith(extra),
      logger: captureLogger(logs),
      // runs are started by the tests, not by a schedule
      taskRunner: { run: async () => {} },
      transformers: slots.get(),
      catalog,
      auth: mockServices.auth(),
    });
    await p.connect({
      applyMutation: async mutation => {
        mutations.push(mutation);
      },
      refresh: async () => {},
    });
    return p;
  };
  const provider = await newProvider();
  return {
    emulator,
    provider,
    others,
    restart: newProvider,
    lastEntities,
    mutations,
    logs,
    lastNames() {
      const last = mutations[mutations.length - 1];
      const entities = last?.type === 'full' ? last.entities : [];
      const names = (kind: string) =>
        entities
          .filter(e => e.entity.kind === kind)
          .map(e => e.entity.metadata.name);
      return { users: names('User'), groups: names('Group') };
    },
    stop: () => emulator.close(),
  };
}
