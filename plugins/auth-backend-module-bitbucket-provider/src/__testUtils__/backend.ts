import {
  coreServices,
  createServiceFactory,
  LoggerService,
} from '@backstage/backend-plugin-api';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import authPlugin from '@backstage/plugin-auth-backend';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  BitbucketCloudEmulator,
  EmulatorOptions,
  SeedUser,
  startEmulator,
} from '@internal/bitbucket-cloud-emulator';
import { JsonObject } from '@backstage/types';
import request from 'supertest';
import authModuleBitbucketProvider from '../index';

export const CLIENT_ID = 'test-consumer';
export const CLIENT_SECRET = 'test-consumer-secret-Zq8';
export const APP_ORIGIN = 'http://localhost:3000';

/** The JSON a /handler/frame page posts to the app window. */
export function readWebMessage(html: string): any {
  const match = html.match(/decodeURIComponent\('(.+?)'\)/);
  if (!match) throw new Error(`not a web message page: ${html.slice(0, 200)}`);
  return JSON.parse(decodeURIComponent(match[1]));
}

/** One log line the backend wrote. */
export interface LogLine {
  level: string;
  message: string;
  meta?: Record<string, unknown>;
}

/**
 * A LoggerService that hands each line, with its child loggers' fields, to
 * `sink`; an Error given as meta goes under `error`.
 */
export function captureLogger(
  sink: (line: LogLine) => void,
  fields: Record<string, unknown> = {},
): LoggerService {
  const at =
    (level: string) =>
    (message: string, meta?: Error | Record<string, unknown>) => {
      sink({
        level,
        message,
        meta:
          meta instanceof Error
            ? { ...fields, error: meta }
            : { ...fields, ...meta },
      });
    };
  return {
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    debug: at('debug'),
    child: more => captureLogger(sink, { ...fields, ...more }),
  };
}

export interface SignInWorld {
  /** Every log line of the backend, structured. */
  logs: LogLine[];
  emulator: BitbucketCloudEmulator;
  server: Awaited<ReturnType<typeof startTestBackend>>['server'];
  agent: ReturnType<typeof request.agent>;
  /** /start → Bitbucket consent as `uuid` → /handler/frame; the posted message. */
  signIn(uuid: string, decision?: 'grant' | 'cancel'): Promise<any>;
  /** GET /refresh as the app does it. */
  refresh(): Promise<request.Response>;
  refreshToken(): string | undefined;
  stop(): Promise<void>;
}

/**
 * The auth backend with this module, an in-memory catalog and a real
 * Bitbucket Cloud emulator on loopback, wired as an admin would.
 */
export async function startSignInWorld(options: {
  users: SeedUser[];
  entities: Entity[];
  provider?: JsonObject;
  consumerPermissions?: string[];
  emulator?: EmulatorOptions;
}): Promise<SignInWorld> {
  const emulator = await startEmulator({
    ...options.emulator,
    seed: {
      consumers: [
        {
          key: CLIENT_ID,
          secret: CLIENT_SECRET,
          callbackUrl: 'http://localhost',
          permissions: options.consumerPermissions ?? ['account', 'email'],
        },
      ],
      users: options.users,
    },
  });
  const logs: LogLine[] = [];
  const backend = await startTestBackend({
    features: [
      createServiceFactory({
        service: coreServices.rootLogger,
        deps: {},
        factory: () => captureLogger(line => logs.push(line)),
      }),
      authPlugin,
      authModuleBitbucketProvider,
      catalogServiceMock.factory({ entities: options.entities }),
      mockServices.rootConfig.factory({
        data: {
          app: { baseUrl: APP_ORIGIN },
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
  const server = backend.server;
  const agent = request.agent(server);
  const cookie = (name: string) =>
    agent.jar.getCookie(name, {
      domain: '127.0.0.1',
      path: '/api/auth/bitbucket',
      script: false,
      secure: false,
    })?.value;

  return {
    logs,
    emulator,
    server,
    agent,
    async signIn(uuid, decision = 'grant') {
      const start = await agent.get(
        `/api/auth/bitbucket/start?env=development&flow=popup&origin=${encodeURIComponent(
          APP_ORIGIN,
        )}&scope=account`,
      );
      if (start.status !== 302) {
        throw new Error(`/start answered ${start.status}: ${start.text}`);
      }
      const back = new URL(
        await emulator.authorize(start.header.location, uuid, decision),
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
    refreshToken: () => cookie('bitbucket-refresh-token'),
    async stop() {
      await backend.stop();
      await emulator.close();
    },
  };
}

/** A catalog User annotated with a Bitbucket uuid. */
export function catalogUser(
  name: string,
  annotations: Record<string, string>,
  spec: Record<string, unknown> = {},
): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'User',
    metadata: { name, namespace: 'default', annotations },
    spec: { memberOf: [], ...spec },
    // what the catalog's processing derives from spec.memberOf
    relations: ((spec.memberOf as string[] | undefined) ?? []).map(group => ({
      type: 'memberOf',
      targetRef: `group:default/${group}`,
    })),
  };
}
