import {
  Agent as HttpAgent,
  createServer,
  IncomingMessage,
  ServerResponse,
} from 'node:http';
import {
  Agent as HttpsAgent,
  createServer as createHttpsServer,
} from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { ADMIN_PREFIX, handleAdmin } from './admin';
import { consentAs } from './consent';
import { answerFaultStatus } from './fault-answer';
import { FaultConfig, FaultInjector } from './faults';
import { Exchange, mediaType, readBody, sendHtml, sendText } from './http';
import { renderErrorPage } from './html';
import {
  AUTHORIZE_PATH,
  handleAuthorizeGet,
  handleAuthorizePost,
  handleToken,
  TOKEN_PATH,
} from './oauth';
import { handleWorkspaceMembers } from './members';
import { CallRecorder, EmulatorCall, PendingCall } from './record';
import { API_PREFIX, handleRest } from './rest';
import {
  demoSeedPath,
  EmulatorSeed,
  loadSeed,
  SeedUser,
  validateSeed,
} from './seed';
import { handleSite } from './site';
import { EmulatorState } from './state';
import { createEmulatorTls, EmulatorTls } from './tls';

/**
 * Options of {@link startEmulator}.
 *
 * @public
 */
export interface EmulatorOptions {
  /** Port to listen on; default 0, a random free port. */
  port?: number;
  /** Address to listen on; default `127.0.0.1`. */
  host?: string;
  /** A seed object or the path of a YAML seed file; default the bundled demo seed. */
  seed?: EmulatorSeed | string;
  /** Fixed latency added to every request, in ms; default 0. */
  latencyMs?: number;
  /** Plus a uniform random 0..N ms; default 0. */
  randomLatencyMs?: number;
  /** Token responses use the pre-2026 `scopes` field instead of `scope`; default false. */
  legacyScopesField?: boolean;
  /** Refresh tokens rotate on every use (CHANGE-3052); false gives the old non-rotating behaviour. Default true. */
  rotateRefreshTokens?: boolean;
  /** Lifetime of access tokens, in seconds; default 7200. */
  accessTokenTtlSeconds?: number;
  /** Default page size of paginated endpoints; default 10. */
  pagelen?: number;
  /**
   * Serve HTTPS: `true` makes a certificate authority for this emulator
   * ({@link createEmulatorTls}; its PEM is {@link BitbucketCloudEmulator.caCert}),
   * or pass one made earlier, e.g. to share it with a proxy in front.
   * Default: plain HTTP.
   */
  tls?: boolean | EmulatorTls;
  /**
   * The clock of codes and tokens (expiry, idle refresh tokens), in ms since
   * the epoch; default `Date.now`. Lets a test or benchmark move time on.
   */
  now?: () => number;
}

/**
 * A running emulator.
 *
 * @public
 */
export interface BitbucketCloudEmulator {
  /** Base URL, e.g. `http://127.0.0.1:43123`; the OAuth endpoints are under `/site/oauth2/`. */
  url: string;
  /** PEM of the CA to trust when serving HTTPS (the `tls` option); undefined over plain HTTP. */
  caCert?: string;
  /** `${url}/2.0` */
  apiBaseUrl: string;
  port: number;
  /** Every request received (admin requests excepted), in arrival order, once answered or abandoned. */
  calls(): EmulatorCall[];
  resetCalls(): void;
  /** Replaces the current faults. */
  setFaults(faults: FaultConfig): void;
  clearFaults(): void;
  /**
   * Programmatic consent for tests: GETs the consent page of `authorizeUrl`
   * and POSTs its form as `userUuid` choosing Grant (or Cancel), over real
   * HTTP. Returns the Location the emulator redirected to. Throws, with the
   * status and page text, when the authorize step answers an error page.
   */
  authorize(
    authorizeUrl: string,
    userUuid: string,
    decision?: 'grant' | 'cancel',
  ): Promise<string>;
  /** Changes a user at run time, e.g. their emails or workspaces. */
  updateUser(uuid: string, patch: Partial<SeedUser>): void;
  addUser(user: SeedUser): void;
  removeUser(uuid: string): void;
  /**
   * Renames a workspace's slug (given by its old slug or braced uuid), as its
   * admin can in Bitbucket: the uuid stays, members and consumers follow.
   */
  renameWorkspace(workspace: string, newSlug: string): void;
  /** Every access token issued so far now answers 401 "Access token expired.". */
  expireAccessTokens(): void;
  /** Every refresh token issued so far is now invalid. */
  revokeRefreshTokens(): void;
  /** Every access and refresh token issued so far, for secret scans. */
  issuedTokens(): string[];
  /** Stops listening and drops every open connection, hung ones included. */
  close(): Promise<void>;
}

/**
 * Starts a Bitbucket Cloud emulator on a local port.
 *
 * @public
 */
export async function startEmulator(
  options: EmulatorOptions = {},
): Promise<BitbucketCloudEmulator> {
  const host = options.host ?? '127.0.0.1';
  const port = checkInteger(options.port ?? 0, 'port', 0, 65535);
  const pagelen = checkInteger(options.pagelen ?? 10, 'pagelen', 1, 100);
  const accessTokenTtlSeconds = checkInteger(
    options.accessTokenTtlSeconds ?? 7200,
    'accessTokenTtlSeconds',
    1,
    Number.MAX_SAFE_INTEGER,
  );
  const latencyMs = checkNonNegative(options.latencyMs ?? 0, 'latencyMs');
  const randomLatencyMs = checkNonNegative(
    options.randomLatencyMs ?? 0,
    'randomLatencyMs',
  );
  const legacyScopesField = options.legacyScopesField ?? false;

  const state = new EmulatorState(resolveSeed(options.seed), {
    accessTokenTtlSeconds,
    rotateRefreshTokens: options.rotateRefreshTokens ?? true,
    now: options.now,
  });
  const tls =
    options.tls === true ? await createEmulatorTls() : options.tls || undefined;
  const scheme = tls ? 'https' : 'http';
  // the user's browser on the consent pages: one keep-alive agent
  const consentAgent = tls
    ? new HttpsAgent({ keepAlive: true, ca: tls.caCert })
    : new HttpAgent({ keepAlive: true });
  const recorder = new CallRecorder();
  const faults = new FaultInjector({ latencyMs, randomLatencyMs });
  const lifetime = new AbortController();
  const pending = new Set<PendingCall>();
  let baseUrl = '';

  const route = (ex: Exchange) => {
    const path = ex.url.pathname;
    if (path === AUTHORIZE_PATH) {
      if (ex.req.method === 'GET' || ex.req.method === 'HEAD') {
        handleAuthorizeGet(ex, state);
      } else if (ex.req.method === 'POST') {
        handleAuthorizePost(ex, state);
      } else {
        sendHtml(
          ex,
          405,
          renderErrorPage('Method not allowed', 'Use GET or POST.'),
        );
      }
    } else if (path === TOKEN_PATH) {
      handleToken(ex, state, { legacyScopesField });
    } else if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
      if (!handleWorkspaceMembers(ex, state, { pagelen })) {
        handleRest(ex, state, { pagelen });
      }
    } else if (!handleSite(ex, state)) {
      sendText(ex, 404, 'Not found');
    }
  };

  const dispatch = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const origin = requestOrigin(req, scheme, baseUrl);
    const ex: Exchange = {
      req,
      res,
      url,
      origin,
      body: '',
      onAnswer: () => {},
    };

    if (url.pathname.startsWith(ADMIN_PREFIX)) {
      try {
        ex.body = await readBody(req);
        handleAdmin(ex, { recorder, faults, state });
      } catch {
        sendText(ex, 400, 'Bad request');
      }
      return;
    }

    const call = recorder.begin(
      req.method ?? 'GET',
      url.pathname,
      url.search.slice(1),
    );
    pending.add(call);
    ex.onAnswer = status => call.finish(status);
    res.on('close', () => {
      // An unanswered request (hung, or the client gave up) is recorded as 0.
      call.finish(0);
      pending.delete(call);
    });

    try {
      ex.body = await readBody(req);
      if (
        url.pathname === TOKEN_PATH &&
        mediaType(req) === 'application/x-www-form-urlencoded'
      ) {
        call.setGrantType(
          new URLSearchParams(ex.body).get('grant_type') ?? undefined,
        );
      }
      const decision = faults.decide(url.pathname);
      await sleep(decision.latencyMs, lifetime.signal);
      const fault = decision.fault;
      if (fault?.hang) {
        return;
      }
      if (fault?.status !== undefined) {
        answerFaultStatus(ex, fault.status, fault.retryAfterSeconds);
        return;
      }
      ex.malformedJson = fault?.malformedJson;
      ex.omitFields = fault?.omitFields;
      ex.setFields = fault?.setFields;
      route(ex);
    } catch {
      if (!lifetime.signal.aborted) {
        answerFaultStatus(ex, 500);
      }
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    dispatch(req, res).catch(() => res.destroy());
  };
  const server = tls
    ? createHttpsServer({ key: tls.key, cert: tls.cert }, listener)
    : createServer(listener);

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(
              `Cannot start the Bitbucket Cloud emulator: ${host}:${port} is already in use`,
            )
          : error,
      );
    };
    server.once('error', onError);
    server.listen({ port, host }, () => {
      server.off('error', onError);
      resolve();
    });
  });

  const address = server.address();
  const actualPort =
    typeof address === 'object' && address ? address.port : port;
  const connectHost = connectableHost(host);
  baseUrl = `${scheme}://${
    connectHost.includes(':') ? `[${connectHost}]` : connectHost
  }:${actualPort}`;

  let closing: Promise<void> | undefined;

  return {
    url: baseUrl,
    caCert: tls?.caCert,
    apiBaseUrl: `${baseUrl}${API_PREFIX}`,
    port: actualPort,
    calls: () => recorder.calls(),
    resetCalls: () => recorder.reset(),
    setFaults: config => faults.set(config),
    clearFaults: () => faults.clear(),
    authorize: (authorizeUrl, userUuid, decision = 'grant') =>
      consentAs(
        {
          connectHost,
          port: actualPort,
          caCert: tls?.caCert,
          agent: consentAgent,
        },
        authorizeUrl,
        userUuid,
        decision,
      ),
    updateUser: (uuid, patch) => state.updateUser(uuid, patch),
    addUser: user => state.addUser(user),
    removeUser: uuid => state.removeUser(uuid),
    renameWorkspace: (workspace, newSlug) =>
      state.renameWorkspace(workspace, newSlug),
    expireAccessTokens: () => state.expireAccessTokens(),
    revokeRefreshTokens: () => state.revokeRefreshTokens(),
    issuedTokens: () => state.issuedTokens(),
    close() {
      if (!closing) {
        closing = new Promise<void>(resolve => {
          lifetime.abort();
          consentAgent.destroy();
          for (const call of pending) {
            call.finish(0);
          }
          pending.clear();
          server.close(() => resolve());
          server.closeAllConnections();
        });
      }
      return closing;
    },
  };
}

/** Where to connect to reach a server listening on `host`. */
function connectableHost(host: string): string {
  if (host === '0.0.0.0') {
    return '127.0.0.1';
  }
  if (host === '::') {
    return '::1';
  }
  return host;
}

function resolveSeed(seed: EmulatorSeed | string | undefined): EmulatorSeed {
  if (seed === undefined) {
    return loadSeed(demoSeedPath);
  }
  if (typeof seed === 'string') {
    return loadSeed(seed);
  }
  return validateSeed(seed, 'the seed option');
}

/** Waits `ms` by the monotonic clock (timers may fire a little early), unless aborted. */
async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  const end = performance.now() + ms;
  for (let left = ms; left > 0; left = end - performance.now()) {
    await delay(Math.ceil(left), undefined, { signal });
  }
}

/** The origin the client used, from the Host header when it is a plain host[:port]. */
function requestOrigin(
  req: IncomingMessage,
  scheme: string,
  fallback: string,
): string {
  const hostHeader = req.headers.host;
  if (
    hostHeader &&
    /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/.test(hostHeader)
  ) {
    return `${scheme}://${hostHeader}`;
  }
  return fallback;
}

function checkInteger(
  value: number,
  name: string,
  min: number,
  max: number,
): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(
      `startEmulator: ${name} must be a whole number from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

function checkNonNegative(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new Error(
      `startEmulator: ${name} must be a number >= 0, got ${value}`,
    );
  }
  return value;
}
