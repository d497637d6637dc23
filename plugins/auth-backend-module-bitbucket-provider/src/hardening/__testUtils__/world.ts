import {
  BackendFeature,
  CacheService,
  coreServices,
  createServiceFactory,
  LoggerService,
} from '@backstage/backend-plugin-api';
import { createBackend } from '@backstage/backend-defaults';
import {
  rootHttpRouterServiceFactory,
  RootHttpRouterFactoryOptions,
} from '@backstage/backend-defaults/rootHttpRouter';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import authPlugin from '@backstage/plugin-auth-backend';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { JsonObject } from '@backstage/types';
import {
  BitbucketCloudEmulator,
  EmulatorOptions,
  SeedUser,
  startEmulator,
} from '@internal/bitbucket-cloud-emulator';
import { createServer } from 'node:net';
import request from 'supertest';
import authModuleBitbucketProvider from '../../index';
import {
  APP_ORIGIN,
  catalogUser,
  CLIENT_ID,
  CLIENT_SECRET,
  captureLogger,
  LogLine,
  readWebMessage,
} from '../../__testUtils__/backend';
import { Leak, logLineText, SecretLedger, stringifyDeep } from './secrets';

export { APP_ORIGIN, CLIENT_ID, CLIENT_SECRET, catalogUser, readWebMessage };
export type { LogLine };

const PROVIDER = '/api/auth/bitbucket';

type Agent = ReturnType<typeof request.agent>;

/** One sign-in as the app and the user do it, and what it issued. */
export interface SignInOutcome {
  /** The JSON the /handler/frame page posts to the app window. */
  message: any;
  /** The authorization code in Bitbucket's redirect, if it issued one. */
  code?: string;
  /** The path and query Bitbucket redirected back to. */
  callback: string;
  /** The `bitbucket-refresh-token` cookie after the sign-in. */
  refreshToken?: string;
  /** Milliseconds from /start to the web message. */
  ms: number;
}

export interface HardeningWorld {
  /** Every backend log line, structured. */
  logs: LogLine[];
  emulator: BitbucketCloudEmulator;
  /** What supertest requests go to: the test server, or the real router's URL. */
  target: any;
  /** Where the backend listens, e.g. `http://127.0.0.1:41234`. */
  baseUrl: string;
  /** The secrets this world saw issued. */
  ledger: SecretLedger;
  /** A fresh user agent (own cookie jar). */
  newAgent(): Agent;
  /** The default agent's cookie jar. */
  agent: Agent;
  /** /start → consent as `uuid` → /handler/frame, with `agent` (default: the world's). */
  signIn(
    uuid: string,
    options?: { agent?: Agent; decision?: 'grant' | 'cancel' },
  ): Promise<SignInOutcome>;
  /** GET /refresh as the app does it. */
  refresh(agent?: Agent): Promise<request.Response>;
  /** POST /logout as the app does it. */
  logout(agent?: Agent): Promise<request.Response>;
  refreshToken(agent?: Agent): string | undefined;
  /** Secrets found in the logs, the emulator's call record and the given texts. */
  leaks(...texts: Array<[where: string, text: string]>): Leak[];
  /** Stops the backend and the emulator, then fails if any log line leaked a secret. */
  stop(): Promise<void>;
}

export interface HardeningWorldOptions {
  users: SeedUser[];
  entities: Entity[];
  /** Merged into `auth.providers.bitbucket.development`. */
  provider?: JsonObject;
  /** Merged into the root of the config. */
  config?: JsonObject;
  consumerPermissions?: string[];
  emulator?: EmulatorOptions;
  /**
   * Serve through Backstage's real root HTTP router (helmet, CORS, request
   * log, error handler) instead of the test backend's bare one, configured
   * like `rootHttpRouterServiceFactory({ configure })`.
   */
  realRouter?: Pick<RootHttpRouterFactoryOptions, 'configure'>;
  /** More features of the backend, e.g. a cache service shared with another backend. */
  features?: BackendFeature[];
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** `count` distinct Bitbucket users, each with a confirmed primary email. */
export function seedUsers(count: number, prefix = 'user'): SeedUser[] {
  return Array.from({ length: count }, (_, i) => {
    const hex = (i + 1).toString(16).padStart(12, '0');
    const name = `${prefix}${i + 1}`;
    return {
      uuid: `{7e57c0de-0000-4000-8000-${hex}}`,
      accountId: `557058:7e57c0de-0000-4000-8000-${hex}`,
      nickname: name,
      displayName: `Test User ${i + 1}`,
      emails: [
        { email: `${name}@example.com`, primary: true, confirmed: true },
      ],
    };
  });
}

/** A catalog User for each seed user, annotated with its uuid. */
export function entitiesFor(users: SeedUser[]): Entity[] {
  return users.map(u =>
    catalogUser(
      u.nickname,
      { 'bitbucket.org/user-id': u.uuid },
      { profile: { email: u.emails[0]?.email } },
    ),
  );
}

/**
 * One in-memory cache for several backends of a test, like a Redis that
 * replicas share; `entries` shows what is stored.
 */
export function sharedCache(): {
  factory: BackendFeature;
  entries: Map<string, { value: unknown; expiresAt: number }>;
} {
  const entries = new Map<string, { value: unknown; expiresAt: number }>();
  const service = (prefix: string): CacheService => ({
    async get(key) {
      const entry = entries.get(prefix + key);
      if (!entry || entry.expiresAt <= Date.now()) return undefined;
      return entry.value as any;
    },
    async set(key, value, options) {
      entries.set(prefix + key, {
        value: JSON.parse(JSON.stringify(value)),
        expiresAt: Date.now() + ((options?.ttl as number | undefined) ?? 3.6e6),
      });
    },
    async delete(key) {
      entries.delete(prefix + key);
    },
    withOptions: () => service(prefix),
  });
  const factory = createServiceFactory({
    service: coreServices.cache,
    deps: { plugin: coreServices.pluginMetadata },
    factory: ({ plugin }) => service(`${plugin.getId()}:`),
  });
  return { factory, entries };
}

/** The payload of a Backstage token (a JWT), unverified. */
export function tokenClaims(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

/** What {@link startBackend} starts. */
export interface BackendOptions {
  /** The root logger of the backend. */
  logger: LoggerService;
  entities: Entity[];
  /** The Bitbucket (emulator) base URL, e.g. `http://127.0.0.1:7100`. */
  emulatorUrl: string;
  provider?: JsonObject;
  config?: JsonObject;
  realRouter?: HardeningWorldOptions['realRouter'];
  features?: BackendFeature[];
}

/**
 * The auth backend with this module and an in-memory catalog: Backstage's
 * test backend, or with `realRouter` a backend as packages/backend builds it
 * (createBackend and its stock services) with the root HTTP router
 * configured as given, on a free loopback port.
 */
export async function startBackend(options: BackendOptions): Promise<{
  baseUrl: string;
  /** What supertest requests go to. */
  target: any;
  stop(): Promise<void>;
}> {
  const port = options.realRouter ? await freePort() : 0;
  const features: BackendFeature[] = [
    ...(options.features ?? []),
    createServiceFactory({
      service: coreServices.rootLogger,
      deps: {},
      factory: () => options.logger,
    }),
    authPlugin,
    authModuleBitbucketProvider,
    catalogServiceMock.factory({ entities: options.entities }),
    mockServices.rootConfig.factory({
      data: {
        ...(options.realRouter && {
          backend: {
            baseUrl: `http://127.0.0.1:${port}`,
            listen: { host: '127.0.0.1', port },
            database: { client: 'better-sqlite3', connection: ':memory:' },
          },
        }),
        ...options.config,
        app: { baseUrl: APP_ORIGIN },
        auth: {
          ...(options.config?.auth as JsonObject | undefined),
          providers: {
            bitbucket: {
              development: {
                clientId: CLIENT_ID,
                clientSecret: CLIENT_SECRET,
                baseUrl: options.emulatorUrl,
                apiBaseUrl: `${options.emulatorUrl}/2.0`,
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
  ];

  if (options.realRouter) {
    const real = createBackend();
    for (const feature of features) real.add(feature);
    real.add(
      rootHttpRouterServiceFactory({ configure: options.realRouter.configure }),
    );
    await real.start();
    const baseUrl = `http://127.0.0.1:${port}`;
    return { baseUrl, target: baseUrl, stop: () => real.stop() };
  }
  const test = await startTestBackend({ features });
  return {
    baseUrl: `http://127.0.0.1:${test.server.port()}`,
    target: test.server,
    stop: () => test.stop(),
  };
}

/**
 * The auth backend with this module, an in-memory catalog and a Bitbucket
 * Cloud emulator on loopback, like `startSignInWorld`, plus what hardening
 * tests need: one agent per user for concurrent sign-ins, the secrets every
 * sign-in issued, and a leak check of every log line when it stops.
 */
export async function startHardeningWorld(
  options: HardeningWorldOptions,
): Promise<HardeningWorld> {
  const emulator = await startEmulator({
    ...options.emulator,
    seed: {
      consumers: [
        {
          key: CLIENT_ID,
          secret: CLIENT_SECRET,
          // the test server's discovery says localhost, the real router 127.0.0.1
          callbackUrl: options.realRouter
            ? 'http://127.0.0.1'
            : 'http://localhost',
          permissions: options.consumerPermissions ?? ['account', 'email'],
        },
      ],
      users: options.users,
    },
  });
  const logs: LogLine[] = [];
  const ledger = new SecretLedger();
  ledger.add('client secret', CLIENT_SECRET);
  ledger.add(
    'client credentials',
    Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64'),
  );

  const {
    baseUrl,
    target,
    stop: stopBackend,
  } = await startBackend({
    logger: captureLogger(line => logs.push(line)),
    entities: options.entities,
    emulatorUrl: emulator.url,
    provider: options.provider,
    config: options.config,
    realRouter: options.realRouter,
    features: options.features,
  });
  const newAgent = () => request.agent(target);
  const defaultAgent = newAgent();

  const refreshToken = (agent: Agent = defaultAgent) =>
    agent.jar.getCookie('bitbucket-refresh-token', {
      domain: '127.0.0.1',
      path: PROVIDER,
      script: false,
      secure: false,
    })?.value;

  const record = (body: any, agent: Agent) => {
    const response = body?.response ?? body;
    ledger.add('access token', response?.providerInfo?.accessToken);
    ledger.add('backstage token', response?.backstageIdentity?.token);
    ledger.add('refresh token', refreshToken(agent));
  };

  const scan = (texts: Array<[string, string]>) => [
    ...logs.flatMap((line, i) =>
      ledger.scan(logLineText(line), `log line ${i}: ${line.message}`),
    ),
    ...ledger.scan(stringifyDeep(emulator.calls()), "the emulator's calls"),
    ...texts.flatMap(([where, text]) => ledger.scan(text, where)),
  ];
  const leaks = (...texts: Array<[string, string]>) => {
    // every token the emulator issued, also those of sign-ins that failed
    // after the token exchange and never reached the browser
    for (const token of emulator.issuedTokens())
      ledger.add('issued token', token);
    return scan(texts);
  };

  let stopped = false;
  return {
    logs,
    emulator,
    target,
    baseUrl,
    ledger,
    newAgent,
    agent: defaultAgent,
    async signIn(uuid, { agent = defaultAgent, decision = 'grant' } = {}) {
      const started = Date.now();
      const start = await agent.get(
        `${PROVIDER}/start?env=development&flow=popup&origin=${encodeURIComponent(
          APP_ORIGIN,
        )}&scope=account`,
      );
      if (start.status !== 302) {
        throw new Error(`/start answered ${start.status}: ${start.text}`);
      }
      const back = new URL(
        await emulator.authorize(start.header.location, uuid, decision),
      );
      const code = back.searchParams.get('code') ?? undefined;
      ledger.add('authorization code', code);
      const callback = `${back.pathname}${back.search}`;
      const frame = await agent.get(callback);
      const message = readWebMessage(frame.text);
      record(message, agent);
      return {
        message,
        code,
        callback,
        refreshToken: refreshToken(agent),
        ms: Date.now() - started,
      };
    },
    async refresh(agent = defaultAgent) {
      const res = await agent
        .get(`${PROVIDER}/refresh?optional&env=development&scope=account`)
        .set('X-Requested-With', 'XMLHttpRequest');
      record(res.body, agent);
      return res;
    },
    logout: (agent = defaultAgent) =>
      agent
        .post(`${PROVIDER}/logout?env=development`)
        .set('X-Requested-With', 'XMLHttpRequest'),
    refreshToken,
    leaks,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopBackend();
      await emulator.close();
      const found = leaks();
      if (found.length) {
        throw new Error(
          `secrets leaked into logs or records: ${JSON.stringify(
            found.slice(0, 5),
          )}`,
        );
      }
    },
  };
}
