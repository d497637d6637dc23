import net from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A TCP relay that puts a network's round trip between its clients and a
 * target: every byte is delayed by half the round-trip time (RTT) in each
 * direction, handshakes included, which is what a kernel's `netem` would do
 * (this machine's kernel has none).
 *
 * The kernel completes a client's TCP handshake at once, before the relay
 * can see it; in a real network the client may only send its first byte one
 * RTT after its SYN. The relay makes up for it: nothing the client sends on
 * a new connection is passed on before one RTT after the connection was
 * accepted (then half an RTT on the way, like every byte). So a new
 * connection costs one RTT for TCP, one for TLS 1.3, then one per request,
 * as over a real network.
 *
 * Bytes keep their order; the delays apply to chunks as they arrive, so the
 * relay adds latency, not a bandwidth limit.
 */
export interface LatencyRelay {
  /** Where clients connect, e.g. `127.0.0.1:41234`. */
  host: string;
  port: number;
  /** The round-trip time it adds now, ms. */
  rttMs: number;
  /** Changes the round-trip time for the bytes that arrive from now on. */
  setRtt(ms: number): void;
  /**
   * Closes every open connection, on both sides (the client's and the
   * target's), as a NAT or load balancer does to idle connections. Returns
   * how many client connections were open.
   */
  dropConnections(): number;
  /** Client connections accepted since the start, and open now. */
  stats(): { accepted: number; open: number };
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Options of {@link startRelay}. */
export interface RelayOptions {
  target: { host: string; port: number };
  rttMs: number;
  /** Address to listen on; default 127.0.0.1, port 0 (a free one). */
  host?: string;
  port?: number;
}

interface Pending {
  at: number;
  chunk: Buffer | null; // null: the end of the stream (FIN)
}

/**
 * One direction of one connection: what `from` sends reaches `to` `delay()`
 * ms later, in order; nothing leaves before `notBefore()`.
 */
class DelayedDirection {
  readonly #queue: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly delay: () => number,
    private readonly notBefore: () => number,
  ) {
    from.on('data', (chunk: Buffer) => this.#push(chunk));
    from.on('end', () => this.#push(null));
  }

  #push(chunk: Buffer | null) {
    const at = Math.max(performance.now(), this.notBefore()) + this.delay();
    this.#queue.push({ at, chunk });
    if (this.#queue.length === 1) this.#flush();
  }

  #flush = () => {
    this.#timer = undefined;
    // timers fire in whole milliseconds: release what is due within half
    // of one, so that the delay is right on average rather than late
    const now = performance.now() + 0.5;
    while (this.#queue.length && this.#queue[0].at <= now) {
      const { chunk } = this.#queue.shift()!;
      if (this.to.destroyed) {
        this.#queue.length = 0;
        return;
      }
      if (chunk === null) {
        this.to.end();
      } else if (!this.to.write(chunk) && !this.from.isPaused()) {
        // the receiver is slow: stop reading until it has caught up
        this.from.pause();
        this.to.once('drain', () => this.from.resume());
      }
    }
    if (this.#queue.length) {
      this.#timer = setTimeout(
        this.#flush,
        Math.max(1, Math.round(this.#queue[0].at - now)),
      );
    }
  };

  stop() {
    clearTimeout(this.#timer);
    this.#queue.length = 0;
  }
}

/** Starts a relay to `target` that adds `rttMs` to every round trip. */
export async function startRelay(options: RelayOptions): Promise<LatencyRelay> {
  let rttMs = checkRtt(options.rttMs);
  let accepted = 0;
  const open = new Set<{ client: net.Socket; upstream: net.Socket }>();

  // half-open: a client's FIN reaches the target one way later, and the
  // answer still flows back
  const server = net.createServer({ allowHalfOpen: true }, client => {
    accepted += 1;
    const acceptedAt = performance.now();
    // the SYN round trip takes the RTT of the moment the connection came
    const handshakeRtt = rttMs;
    const upstream = net.connect({ ...options.target, allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const pair = { client, upstream };
    open.add(pair);
    const oneWay = () => rttMs / 2;
    const up = new DelayedDirection(
      client,
      upstream,
      oneWay,
      () => acceptedAt + handshakeRtt,
    );
    const down = new DelayedDirection(upstream, client, oneWay, () => 0);
    let aborted = false;
    // a reset or an error: the other side learns of it one way later
    const abort = () => {
      if (aborted) return;
      aborted = true;
      open.delete(pair);
      up.stop();
      down.stop();
      setTimeout(() => {
        client.destroy();
        upstream.destroy();
      }, oneWay()).unref();
    };
    const closed = (hadError: boolean) => {
      if (hadError) abort();
      else if (client.destroyed && upstream.destroyed) open.delete(pair);
    };
    client.on('error', abort);
    upstream.on('error', abort);
    client.on('close', closed);
    upstream.on('close', closed);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;

  const dropConnections = () => {
    const count = open.size;
    for (const { client, upstream } of open) {
      client.destroy();
      upstream.destroy();
    }
    open.clear();
    return count;
  };

  return {
    host: address.address,
    port: address.port,
    get rttMs() {
      return rttMs;
    },
    setRtt(ms: number) {
      rttMs = checkRtt(ms);
    },
    dropConnections,
    stats: () => ({ accepted, open: open.size }),
    close() {
      dropConnections();
      return new Promise(resolve => server.close(() => resolve()));
    },
  };
}

function checkRtt(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new Error(
      `relay: the round-trip time must be a number >= 0, got ${ms}`,
    );
  }
  return ms;
}
