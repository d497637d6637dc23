import { Config, readDurationFromConfig } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { durationToMilliseconds } from '@backstage/types';
import type { Socket } from 'node:net';
import { createSecureContext, SecureContextOptions } from 'node:tls';
import {
  Agent,
  buildConnector,
  Dispatcher,
  getGlobalDispatcher,
  Pool,
} from 'undici';
import type { BitbucketProviderSettings } from './config';

/**
 * Connections to Bitbucket opened ahead of need.
 *
 * A sign-in waits on Bitbucket twice: the token exchange, then the profile
 * round (user, emails, workspaces at once). Each call on a new connection
 * first pays a TCP and a TLS handshake: a first sign-in after a quiet spell
 * costs about six round trips instead of two. But the user spends seconds on
 * Bitbucket's consent page between `/start` and the callback; `/start` opens
 * the connections the callback will need (one to the token host, one per
 * parallel profile call to the API host), TCP and TLS only: no request, so
 * nothing counts against Bitbucket's rate limits. They are held until the
 * callback's calls take them, or for `preconnectHoldTime`.
 *
 * The connections are HTTP/1.1, one per parallel call: that reaches the
 * floor of two round trips whatever the server offers. HTTP/2 (undici's
 * `allowH2`) would let one connection carry the round, but undici's pool
 * counts a client that is still connecting as busy after one request, so
 * the three calls of a round dispatched at once would open three
 * connections anyway; and whether Bitbucket offers h2 could not be checked
 * from where this was written.
 *
 * All calls to Bitbucket go through one process-wide undici Agent whose
 * connector hands out these connections first, but only while the global
 * dispatcher is Node's default one, compared by identity. When the backend
 * has set a global dispatcher of its own (a proxy, as in Backstage's
 * corporate proxy guide, an Agent with a custom CA or pinning, an egress
 * filter, a mock), the calls go through that one instead, as `fetch`'s
 * would, and nothing is opened ahead.
 */

/**
 * The global dispatcher when this file loaded, if it is undici's default:
 * an `Agent` made without options (what Node, or the undici package,
 * installs when nobody set one). A dispatcher the backend set before this
 * module loaded is one of its own unless it is such a bare Agent: then
 * nothing counts as the default and every call goes through the global
 * dispatcher (only the connections opened ahead are lost). Read through
 * undici's options record; when that cannot be read, nothing counts as the
 * default either.
 */
export function defaultDispatcherAtLoad(
  dispatcher: Dispatcher,
): Dispatcher | undefined {
  if (dispatcher?.constructor?.name !== 'Agent') return undefined;
  const key = Object.getOwnPropertySymbols(dispatcher).find(
    s => s.description === 'options',
  );
  const options = key
    ? ((dispatcher as unknown as Record<symbol, unknown>)[key] as
        | Record<string, unknown>
        | undefined)
    : undefined;
  if (!options || typeof options !== 'object') return undefined;
  const bare = Object.entries(options).every(
    ([name, value]) =>
      value === undefined || (name === 'maxOrigins' && value === Infinity),
  );
  return bare ? dispatcher : undefined;
}

/** Node's default global dispatcher, by identity (see {@link defaultDispatcherAtLoad}). */
const NODE_DEFAULT_DISPATCHER = defaultDispatcherAtLoad(getGlobalDispatcher());

/** How long pre-opened connections wait for the callback by default. */
export const DEFAULT_PRECONNECT_HOLD_MS = 120_000;
/** At most this many connections per origin wait unused (`/start` needs no sign-in). */
export const MAX_HELD_PER_ORIGIN = 16;
/**
 * How long an idle pooled connection is kept when the server does not say
 * (`Keep-Alive: timeout=…`). api.bitbucket.org sends no such header
 * (jenkinsci/bitbucket-branch-source-plugin#218) and publishes no idle
 * timeout; clients that kept its connections indefinitely met stale ones,
 * and that plugin has kept them 5 s since 2019 (#218; again in #1012).
 * undici's default is 4 s.
 */
export const KEEP_ALIVE_MS = 5000;
/**
 * When the server does say, its timeout less this margin (undici's default
 * is 2 s; Node's https agent, which upstream uses, takes 1 s off): a
 * request sent just before the client's timeout still reaches the server
 * well before its own.
 */
export const KEEP_ALIVE_MARGIN_MS = 1000;

/** A connection opened ahead, waiting for a call to take it. */
class HeldConnection {
  socket: Socket | undefined;
  /** null while connecting; then the outcome */
  result: { error?: Error } | null = null;
  #abandoned = false;
  readonly #waiters: Array<() => void> = [];
  readonly #timer: NodeJS.Timeout;
  readonly #forget: (held: HeldConnection) => void;

  constructor(holdMs: number, forget: (held: HeldConnection) => void) {
    this.#forget = forget;
    this.#timer = setTimeout(this.#gone, holdMs);
    this.#timer.unref();
  }

  /** The handshake is over: a connection, or the error that ended it. */
  settled(error: Error | null, socket: Socket | null) {
    this.result = error ? { error } : {};
    if (socket) {
      this.socket = socket;
      if (this.#abandoned) {
        socket.destroy();
      } else {
        // held, not in use: keeps no process alive, and an error ends it quietly
        socket.unref();
        socket.on('close', this.#gone);
        socket.on('error', this.#gone);
      }
    } else {
      this.#forget(this);
    }
    this.#waiters.splice(0).forEach(wake => wake());
  }

  /** Runs `then` once the handshake is over (at once if it is). */
  whenSettled(then: () => void) {
    // never synchronously: undici's client ignores a connection handed to it
    // from within its own connect call
    if (this.result) process.nextTick(then);
    else this.#waiters.push(then);
  }

  /** Whether it can still serve a call. */
  get usable(): boolean {
    return !this.result?.error && !this.socket?.destroyed;
  }

  /** No longer held: taken by a call, closed, or given up. */
  release() {
    clearTimeout(this.#timer);
    this.#forget(this);
    this.socket?.off('close', this.#gone);
    this.socket?.off('error', this.#gone);
  }

  /** Given up: closed now, or as soon as its handshake is over. */
  #gone = () => {
    this.release();
    this.#abandoned = true;
    this.socket?.destroy();
  };

  close() {
    this.#gone();
  }
}

type ConnectOptions = buildConnector.BuildOptions;
type ConnectorOptions = Parameters<buildConnector.connector>[0];
type ConnectorCallback = buildConnector.Callback;

const defaultPort = (protocol: string) => (protocol === 'https:' ? 443 : 80);

function originKey(protocol: string, hostname: string, port: string | number) {
  return `${protocol}//${hostname}:${port || defaultPort(protocol)}`;
}

/**
 * The connections of this process to Bitbucket's hosts: a keep-alive pool
 * (undici's Agent), and the connections opened ahead of a callback that
 * wait for it.
 */
export class BitbucketConnections {
  readonly #connect: buildConnector.connector;
  readonly #agent: Agent;
  readonly #held = new Map<string, HeldConnection[]>();
  /** Open connections of the agent's pools, by origin (kept by their events: O(1) to read). */
  readonly #connected = new Map<string, number>();
  readonly #maxHeld: number;
  #opened = 0;

  constructor(
    options: { connect?: ConnectOptions; maxHeldPerOrigin?: number } = {},
  ) {
    this.#connect = buildConnector({
      // one TLS context for every connection: making one per connection
      // (what tls.connect does without it) costs more CPU than the handshake
      secureContext: createSecureContext(
        options.connect as SecureContextOptions,
      ),
      ...options.connect,
    });
    this.#maxHeld = options.maxHeldPerOrigin ?? MAX_HELD_PER_ORIGIN;
    this.#agent = new Agent({
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveTimeoutThreshold: KEEP_ALIVE_MARGIN_MS,
      factory: (origin, opts) => {
        const key = new URL(String(origin)).origin;
        const count = (delta: number) =>
          this.#connected.set(key, (this.#connected.get(key) ?? 0) + delta);
        return new Pool(origin, opts)
          .on('connect', () => count(1))
          .on('disconnect', () => count(-1));
      },
      connect: (opts: ConnectorOptions, callback: ConnectorCallback) => {
        if (!this.#take(opts, callback)) this.#connect(opts, callback);
      },
    });
  }

  /**
   * The dispatcher for a call to Bitbucket: this pool while the global
   * dispatcher is Node's default (the very same object), else the global
   * one the backend set (a proxy, a custom CA, a mock).
   */
  dispatcher(): Dispatcher {
    const global = getGlobalDispatcher();
    return NODE_DEFAULT_DISPATCHER !== undefined &&
      global === NODE_DEFAULT_DISPATCHER
      ? this.#agent
      : global;
  }

  /**
   * Makes `count` connections to the origin of `url` ready within a few
   * round trips, counting those the pool has (busy or not) and those already
   * held, and holds the new ones for `holdMs`. Sends nothing over them.
   */
  preconnect(url: string, count: number, holdMs: number): void {
    if (holdMs <= 0 || count <= 0 || this.dispatcher() !== this.#agent) return;
    const target = new URL(url);
    const key = originKey(target.protocol, target.hostname, target.port);
    const held = this.#held.get(key) ?? [];
    // Every connection the pool has counts, busy or not: under load, those
    // busy now are free again long before the callback comes, and opening
    // more would only add handshakes. After a quiet spell the pool is empty.
    const connected = this.#connected.get(target.origin) ?? 0;
    const missing = Math.min(
      count - connected - held.length,
      this.#maxHeld - held.length,
    );
    for (let i = 0; i < missing; i++) this.#open(target, key, holdMs);
  }

  /** Connections opened ahead since the start (for tests and benchmarks). */
  get opened(): number {
    return this.#opened;
  }

  /** Connections held now, by origin (`https://host:port`). */
  held(): Record<string, number> {
    return Object.fromEntries(
      [...this.#held].map(([key, list]) => [key, list.length]),
    );
  }

  /** Closes the pool and every held connection. */
  async close(): Promise<void> {
    for (const list of this.#held.values()) {
      [...list].forEach(held => held.close());
    }
    await this.#agent.close();
  }

  #open(target: URL, key: string, holdMs: number) {
    this.#opened += 1;
    const list = this.#held.get(key) ?? [];
    this.#held.set(key, list);
    const forget = (held: HeldConnection) => {
      const i = list.indexOf(held);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0 && this.#held.get(key) === list) {
        this.#held.delete(key);
      }
    };
    const held = new HeldConnection(holdMs, forget);
    list.push(held);
    this.#connect(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        host: target.host,
        port: target.port || String(defaultPort(target.protocol)),
      },
      (error, socket) => held.settled(error, socket),
    );
  }

  /**
   * The pool's connector asks for a connection: a held one of that origin,
   * if any (waiting for its handshake to finish), else undefined.
   */
  #take(opts: ConnectorOptions, callback: ConnectorCallback): boolean {
    const key = originKey(opts.protocol, opts.hostname, opts.port);
    const held = this.#held.get(key)?.find(h => h.usable);
    if (!held) return false;
    held.release();
    held.whenSettled(() => {
      const socket = held.socket;
      if (!held.usable || !socket) {
        // it failed meanwhile: a connection of its own, as without preconnect
        this.#connect(opts, callback);
      } else {
        socket.ref();
        callback(null, socket);
      }
    });
    return true;
  }
}

let shared: BitbucketConnections | undefined;

/** The process's connections to Bitbucket (one pool, like the global dispatcher). */
export function bitbucketConnections(): BitbucketConnections {
  shared ??= new BitbucketConnections();
  return shared;
}

/** What an environment opens ahead: where, how many, for how long. */
export interface PreconnectPlan {
  tokenUrl: string;
  apiBaseUrl: string;
  /** Calls of the profile round made at once: one connection each. */
  profileRound: number;
  holdMs: number;
}

/** The plan of one environment, from its settings and `preconnectHoldTime`. */
export function readPreconnectPlan(
  config: Config,
  settings: BitbucketProviderSettings,
  options: { sequentialProfileFetch?: boolean; path?: string } = {},
): PreconnectPlan {
  const { workspaces } = settings;
  // with the catalog answering, the round is user and emails; the workspace
  // calls of a miss open their own connections
  const catalogFirst =
    settings.membershipSource === 'catalog' &&
    workspaces.minimumRole !== 'owner';
  const parallel = catalogFirst
    ? 2
    : 2 +
      (settings.needsWorkspaces ? 1 : 0) +
      (workspaces.minimumRole ? workspaces.allowed?.length ?? 0 : 0);
  return {
    tokenUrl: settings.tokenUrl,
    apiBaseUrl: settings.apiBaseUrl,
    profileRound: options.sequentialProfileFetch ? 1 : parallel,
    holdMs: readHoldTime(
      config,
      options.path ?? 'auth.providers.bitbucket.<env>',
    ),
  };
}

/**
 * `/start`: the callback will exchange the code at the token host, then make
 * the profile round at the API host.
 */
export function preconnectForSignIn(plan: PreconnectPlan): void {
  const connections = bitbucketConnections();
  if (new URL(plan.tokenUrl).origin === new URL(plan.apiBaseUrl).origin) {
    // one host for both (an emulator, a proxy): the sum
    connections.preconnect(plan.apiBaseUrl, plan.profileRound + 1, plan.holdMs);
    return;
  }
  connections.preconnect(plan.tokenUrl, 1, plan.holdMs);
  connections.preconnect(plan.apiBaseUrl, plan.profileRound, plan.holdMs);
}

/**
 * A refresh that will fetch the profile: the API host's connections open
 * while the token call runs, instead of after it.
 */
export function preconnectForProfileRound(plan: PreconnectPlan): void {
  bitbucketConnections().preconnect(
    plan.apiBaseUrl,
    plan.profileRound,
    plan.holdMs,
  );
}

function readHoldTime(config: Config, path: string): number {
  const raw = config.getOptional('preconnectHoldTime');
  if (raw === undefined) return DEFAULT_PRECONNECT_HOLD_MS;
  if (raw === 0) return 0;
  try {
    const ms = durationToMilliseconds(
      readDurationFromConfig(config, { key: 'preconnectHoldTime' }),
    );
    if (ms >= 0) return ms;
  } catch {
    // reported below
  }
  throw new InputError(
    `Invalid config value at '${path}.preconnectHoldTime': expected a duration such as '2m', { minutes: 2 } or 'PT2M', or 0 to open no connection ahead.`,
  );
}
