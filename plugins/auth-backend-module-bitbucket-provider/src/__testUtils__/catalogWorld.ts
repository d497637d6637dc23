import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  coreServices,
  createBackendModule,
  createServiceFactory,
} from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import authPlugin from '@backstage/plugin-auth-backend';
import catalogPlugin from '@backstage/plugin-catalog-backend';
import {
  catalogProcessingExtensionPoint,
  EntityProviderConnection,
} from '@backstage/plugin-catalog-node';
import {
  BitbucketCloudEmulator,
  SeedUser,
  startEmulator,
} from '@internal/bitbucket-cloud-emulator';
import { JsonObject } from '@backstage/types';
import request from 'supertest';
import { createBitbucketProviderModule } from '../module';
import {
  APP_ORIGIN,
  captureLogger,
  CLIENT_ID,
  CLIENT_SECRET,
  LogLine,
  readWebMessage,
} from './backend';

/** The location type the org import writes (the contract of issue 19). */
export const IMPORT_LOCATION = 'bitbucket-cloud-org:test';

/** A workspace Group as the org import emits it, with the contract's annotations. */
export function importedGroup(options: {
  name: string;
  workspaceUuid: string;
  slug: string;
  members: string[];
  /** ms since the epoch */
  listedAt: number;
}): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Group',
    metadata: {
      name: options.name,
      namespace: 'default',
      annotations: {
        'backstage.io/managed-by-location': IMPORT_LOCATION,
        'backstage.io/managed-by-origin-location': IMPORT_LOCATION,
        'bitbucket.org/workspace-uuid': options.workspaceUuid,
        'bitbucket.org/workspace-slug': options.slug,
        'bitbucket.org/members-listed-at': new globalThis.Date(
          options.listedAt,
        ).toISOString(),
        'bitbucket.org/member-uuids': options.members
          .map(u => u.toLowerCase())
          .sort()
          .join(','),
      },
    },
    spec: { type: 'workspace', children: [] },
  };
}

export interface CatalogWorld {
  logs: LogLine[];
  emulator: BitbucketCloudEmulator;
  /** Replaces what the stand-in org import provides, as a run of it does. */
  importRun(entities: Entity[]): Promise<void>;
  /** Waits until the catalog serves the entity with these annotations. */
  served(ref: string, annotations?: Record<string, string>): Promise<Entity>;
  signIn(uuid: string): Promise<any>;
  refresh(): Promise<request.Response>;
  /** `METHOD path status` of every call Bitbucket got since the last reset. */
  calls(): string[];
  stop(): Promise<void>;
}

/**
 * A real catalog backend (sqlite in memory) with a stand-in of the org
 * import (an entity provider emitting Groups under the import's location
 * type), optionally a YAML file location whose rules allow Users and
 * Groups, the auth backend with this module, and the emulator.
 */
export async function startCatalogWorld(options: {
  users: SeedUser[];
  provider?: JsonObject;
  /** YAML written to a file location with `rules: [{ allow: [User, Group] }]`. */
  yaml?: string;
  /** Defaults to 0: every refresh asks the catalog. */
  catalogReuseMs?: number;
}): Promise<CatalogWorld> {
  // The catalog client calls this backend at localhost, a name the
  // Backstage CLI's Jest guard refuses to resolve: let that one through.
  const realAgent = http.globalAgent;
  http.globalAgent = new http.Agent({
    lookup: (hostname: string, opts: any, callback: any) => {
      if (hostname !== 'localhost') {
        callback(new Error('Network requests are not allowed in tests'));
      } else if (opts?.all) {
        callback(null, [{ address: '127.0.0.1', family: 4 }]);
      } else {
        callback(null, '127.0.0.1', 4);
      }
    },
  });
  const emulator = await startEmulator({
    seed: {
      consumers: [
        {
          key: CLIENT_ID,
          secret: CLIENT_SECRET,
          callbackUrl: 'http://localhost',
          permissions: ['account', 'email', 'team'],
        },
      ],
      users: options.users,
    },
  });
  let dir: string | undefined;
  const locations: JsonObject[] = [];
  if (options.yaml) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitbucket-org-data-'));
    const file = path.join(dir, 'org.yaml');
    fs.writeFileSync(file, options.yaml);
    locations.push({
      type: 'file',
      target: file,
      rules: [{ allow: ['User', 'Group'] }],
    });
  }
  let connection: EntityProviderConnection | undefined;
  let connected: () => void;
  const ready = new Promise<void>(r => (connected = r));
  const logs: LogLine[] = [];
  const backend = await startTestBackend({
    features: [
      createServiceFactory({
        service: coreServices.rootLogger,
        deps: {},
        factory: () => captureLogger(line => logs.push(line)),
      }),
      catalogPlugin,
      createBackendModule({
        pluginId: 'catalog',
        moduleId: 'test-org-import',
        register(reg) {
          reg.registerInit({
            deps: { catalog: catalogProcessingExtensionPoint },
            async init({ catalog }) {
              catalog.addEntityProvider({
                getProviderName: () => 'test-org-import',
                async connect(c) {
                  connection = c;
                  connected();
                },
              });
            },
          });
        },
      }),
      authPlugin,
      createBitbucketProviderModule({
        catalogReuseMs: options.catalogReuseMs ?? 0,
      }),
      mockServices.rootConfig.factory({
        data: {
          app: { baseUrl: APP_ORIGIN },
          catalog: { locations, processingInterval: { seconds: 1 } },
          auth: {
            providers: {
              bitbucket: {
                development: {
                  clientId: CLIENT_ID,
                  clientSecret: CLIENT_SECRET,
                  baseUrl: emulator.url,
                  apiBaseUrl: emulator.apiBaseUrl,
                  signIn: {
                    resolvers: [
                      { resolver: 'userIdMatchingUserEntityAnnotation' },
                    ],
                  },
                  ...options.provider,
                },
              },
            },
          },
        },
      }),
    ],
  });
  await ready;
  const agent = request.agent(backend.server);

  const served = async (
    ref: string,
    annotations: Record<string, string> = {},
  ): Promise<Entity> => {
    const [kind, rest] = ref.split(':');
    const [namespace, name] = rest.split('/');
    for (let i = 0; i < 150; i++) {
      const res = await request(backend.server)
        .get(`/api/catalog/entities/by-name/${kind}/${namespace}/${name}`)
        .set('Authorization', mockCredentials.user.header());
      const entity = res.status === 200 ? (res.body as Entity) : undefined;
      if (
        entity &&
        Object.entries(annotations).every(
          ([k, v]) => entity.metadata.annotations?.[k] === v,
        )
      ) {
        return entity;
      }
      await new Promise(r => setTimeout(r, 100));
    }
    throw new Error(`${ref} is not served with ${JSON.stringify(annotations)}`);
  };

  return {
    logs,
    emulator,
    async importRun(groups) {
      await connection!.applyMutation({
        type: 'full',
        entities: groups.map(entity => ({
          entity,
          locationKey: IMPORT_LOCATION,
        })),
      });
      for (const g of groups) {
        await served(
          `${g.kind.toLowerCase()}:default/${g.metadata.name}`,
          g.metadata.annotations as Record<string, string>,
        );
      }
    },
    served,
    async signIn(uuid) {
      const start = await agent.get(
        `/api/auth/bitbucket/start?env=development&flow=popup&origin=${encodeURIComponent(
          APP_ORIGIN,
        )}&scope=account`,
      );
      if (start.status !== 302) {
        throw new Error(`/start answered ${start.status}: ${start.text}`);
      }
      const back = new URL(
        await emulator.authorize(start.header.location, uuid),
      );
      const frame = await agent.get(`${back.pathname}${back.search}`);
      return readWebMessage(frame.text);
    },
    refresh: () =>
      agent
        .get(
          '/api/auth/bitbucket/refresh?optional&env=development&scope=account',
        )
        .set('X-Requested-With', 'XMLHttpRequest'),
    calls: () => emulator.calls().map(c => `${c.method} ${c.path} ${c.status}`),
    async stop() {
      await backend.stop();
      await emulator.close();
      http.globalAgent = realAgent;
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
