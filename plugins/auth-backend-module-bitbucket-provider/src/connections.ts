import { Config, readDurationFromConfig } from '@backstage/config';
import { InputError } from '@backstage/errors';
import { durationToMilliseconds } from '@backstage/types';
import { Agent as HttpAgent, ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { isIP, Socket } from 'node:net';
import { createSecureContext, SecureContextOptions } from 'node:tls';
import { Dispatcher, getGlobalDispatcher } from 'undici';
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
 * floor of two round trips whatever the server offers, and whether Bitbucket
 * offers h2 could not be checked from where this was written.
 *
 * The calls go through Node's own HTTP client (`node:https`, with one
 * keep-alive agent per protocol), not through undici's: undici parses HTTP
 * with a WebAssembly build of llhttp, and V8 optimises that code on a
 * worker thread once it is hot; glibc keeps the memory that compiler freed
 * in the thread's malloc arena, about 11 MB of RSS for the process's life
 * (measured with the bench, docs/benchmarks.md). Node's client uses the
 * native llhttp.
 *
 * That holds while the global dispatcher (what `fetch` uses) is Node's
 * default one, compared by identity. When the backend has set a global
 * dispatcher of its own (a proxy, as in Backstage's corporate proxy guide,
 * an Agent with a custom CA or pinning, an egress filter, a mock), the calls
 * go through that one instead, as `fetch`'s would, and nothing is opened
 * ahead.
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
 * When the server does say, Node's agent keeps them for its timeout less
 * 1 s, so that a request sent just before the client's timeout still
 * reaches the server well before its own.
 */
export const KEEP_ALIVE_MS = 5000;

/** A connection opened ahead, waiting for a call to take it. */
class HeldConnection {
  readonly socket: Socket;
  readonly #timer: NodeJS.Timeout;
  readonly #forget: (held: HeldConnection) => void;

  constructor(
    socket: Socket,
    holdMs: number,
    forget: (held: HeldConnection) => void,
  ) {
    this.socket = socket;
    this.#forget = forget;
    this.#timer = setTimeout(this.#gone, holdMs);
    this.#timer.unref();
    // held, not in use: keeps no process alive, and an error ends it quietly
    socket.unref();
    socket.on('close', this.#gone);
    socket.on('error', this.#gone);
  }

  /** Whether it can still serve a call (a call that comes during the handshake waits for it). */
  get usable(): boolean {
    return !this.socket.destroyed;
  }

  /** Taken by a call: no longer held, the caller's from now on. */
  take(): Socket {
    this.#release();
    this.socket.ref();
    return this.socket;
  }

  #release() {
    clearTimeout(this.#timer);
    this.#forget(this);
    this.socket.off('close', this.#gone);
    this.socket.off('error', this.#gone);
  }

  /** Given up: closed now (a handshake under way ends too). */
  #gone = () => {
    this.#release();
    this.socket.destroy();
  };

  close() {
    this.#gone();
  }
}

/** Which of the pool's agents serves `url` (anything but https is http). */
const protocolOf = (url: URL): 'http:' | 'https:' =>
  url.protocol === 'https:' ? 'https:' : 'http:';

const defaultPort = (protocol: string) => (protocol === 'https:' ? 443 : 80);

/** An IPv6 address without its brackets: a URL has them, Node's agent not. */
const bareHost = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1');

function originKey(
  protocol: string,
  hostname: string | null | undefined,
  port: string | number | null | undefined,
) {
  const host = hostname ? bareHost(hostname) : hostname;
  return `${protocol}//${host}:${port || defaultPort(protocol)}`;
}

/** What Node's agents hand to `createConnection` (their options and the request's). */
type ConnectionArgs = ClientRequestArgs & {
  servername?: string;
  _agentKey?: string;
};
type CreateConnection = (
  options: ConnectionArgs,
  callback?: (error: Error | null, socket: Socket) => void,
) => Socket | undefined | null;

/**
 * The connections of this process to Bitbucket's hosts: a keep-alive pool
 * (one Node agent per protocol), and the connections opened ahead of a
 * callback that wait for it.
 */
export class BitbucketConnections {
  readonly #agents: Record<'http:' | 'https:', HttpAgent>;
  /** Each agent's own way to open a connection (TCP, and TLS for https). */
  readonly #open: Record<'http:' | 'https:', CreateConnection>;
  readonly #held = new Map<string, HeldConnection[]>();
  /** Open connections of the pool, by origin (kept by their events: O(1) to read). */
  readonly #connected = new Map<string, number>();
  readonly #maxHeld: number;
  #opened = 0;

  /**
   * @param options.connect - TLS options for every connection (a `ca` for a
   *   test server); one secure context is made of them and shared
   * @param options.maxHeldPerOrigin - connections held per origin at most
   */
  constructor(
    options: { connect?: SecureContextOptions; maxHeldPerOrigin?: number } = {},
  ) {
    this.#maxHeld = options.maxHeldPerOrigin ?? MAX_HELD_PER_ORIGIN;
    const pool = {
      keepAlive: true,
      // the idle timeout when the server names none (see KEEP_ALIVE_MS)
      timeout: KEEP_ALIVE_MS,
    };
    this.#agents = {
      'http:': new HttpAgent(pool),
      'https:': new HttpsAgent({
        ...pool,
        // one TLS context for every connection: making one per connection
        // (what tls.connect does without it) costs more CPU than the handshake
        secureContext: createSecureContext(options.connect),
      }),
    };
    this.#open = {
      'http:': this.#takeOrOpen('http:'),
      'https:': this.#takeOrOpen('https:'),
    };
  }

  /**
   * The agent for a call to `url`: this pool while the global dispatcher is
   * Node's default (the very same object); undefined when the backend set
   * one of its own (a proxy, a custom CA, a mock), which the call must then
   * go through.
   */
  agentFor(url: URL): HttpAgent | undefined {
    return this.#ownsCalls() ? this.#agents[protocolOf(url)] : undefined;
  }

  #ownsCalls(): boolean {
    return (
      NODE_DEFAULT_DISPATCHER !== undefined &&
      getGlobalDispatcher() === NODE_DEFAULT_DISPATCHER
    );
  }

  /**
   * Makes `count` connections to the origin of `url` ready within a few
   * round trips, counting those the pool has (busy or not) and those already
   * held, and holds the new ones for `holdMs`. Sends nothing over them.
   */
  preconnect(url: string, count: number, holdMs: number): void {
    if (holdMs <= 0 || count <= 0 || !this.#ownsCalls()) return;
    const target = new URL(url);
    const key = originKey(target.protocol, target.hostname, target.port);
    const held = this.#held.get(key) ?? [];
    // Every connection the pool has counts, busy or not: under load, those
    // busy now are free again long before the callback comes, and opening
    // more would only add handshakes. After a quiet spell the pool is empty.
    const connected = this.#connected.get(key) ?? 0;
    const missing = Math.min(
      count - connected - held.length,
      this.#maxHeld - held.length,
    );
    for (let i = 0; i < missing; i++) this.#hold(target, key, holdMs);
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
    Object.values(this.#agents).forEach(agent => agent.destroy());
  }

  /**
   * The agent's `createConnection`, wrapped: a held connection of that
   * origin when there is one (a call that comes during its handshake waits
   * for it), else a new one; either is counted while it is open. What it
   * returns opens new connections (for {@link BitbucketConnections.preconnect}).
   *
   * Every connection gets Nagle's algorithm off. Node's agents ask for that
   * (`noDelay: true`), but `tls.connect` drops the option, so an https
   * connection kept it on: a request written while the handshake was under
   * way left as two segments, the second held until the server's delayed
   * ACK, 40 ms on Linux (a cold refresh's profile round on the connections
   * opened during its token call waited that long, issue 21).
   */
  #takeOrOpen(protocol: 'http:' | 'https:'): CreateConnection {
    const agent = this.#agents[protocol];
    const agentOpen = (
      agent as unknown as { createConnection: CreateConnection }
    ).createConnection;
    const open: CreateConnection = options => {
      const socket = agentOpen.call(agent, options);
      socket?.setNoDelay(true);
      return socket;
    };
    const own: CreateConnection = options => {
      const key = originKey(protocol, options.host, options.port);
      const held = this.#held.get(key)?.find(h => h.usable);
      const socket = held ? held.take() : open(options);
      if (socket) {
        this.#count(key, 1);
        socket.once('close', () => this.#count(key, -1));
      }
      return socket;
    };
    (
      agent as unknown as { createConnection: CreateConnection }
    ).createConnection = own;
    return open;
  }

  #count(key: string, delta: number) {
    const now = (this.#connected.get(key) ?? 0) + delta;
    if (now > 0) this.#connected.set(key, now);
    else this.#connected.delete(key);
  }

  #hold(target: URL, key: string, holdMs: number) {
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
    const protocol = protocolOf(target);
    const agent = this.#agents[protocol] as HttpAgent & {
      options: ConnectionArgs;
      getName(options: ConnectionArgs): string;
    };
    // an IPv6 address without its brackets, as Node's client passes it
    const host = bareHost(target.hostname);
    // what the agent itself would pass, so that TLS sessions are cached and
    // resumed under the same name
    const options: ConnectionArgs = {
      ...agent.options,
      host,
      port: target.port || defaultPort(target.protocol),
      servername: isIP(host) ? '' : host,
    };
    options._agentKey = agent.getName(options);
    const socket = this.#open[protocol](options);
    if (socket) list.push(new HeldConnection(socket, holdMs, forget));
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
    // one host for both (an emulator): the token call's connection is free
    // again before the profile round starts (the agent frees it as its
    // answer ends), so the round's calls are all that run at once
    connections.preconnect(
      plan.apiBaseUrl,
      Math.max(plan.profileRound, 1),
      plan.holdMs,
    );
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
