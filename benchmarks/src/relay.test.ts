import { randomBytes } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { startEmulator } from '@internal/bitbucket-cloud-emulator';
import { LatencyRelay, startRelay } from './relay';

/** A TCP server that records what it got, and answers each chunk with `reply(chunk)`. */
async function startTarget(reply: (chunk: Buffer) => Buffer | null) {
  const received: { at: number; bytes: Buffer }[] = [];
  const sockets = new Set<net.Socket>();
  const events: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, socket => {
    sockets.add(socket);
    events.push('connection');
    socket.on('data', (chunk: Buffer) => {
      received.push({ at: performance.now(), bytes: chunk });
      const answer = reply(chunk);
      if (answer) socket.write(answer);
    });
    socket.on('end', () => {
      events.push('end');
      socket.end('bye');
    });
    socket.on('close', () => {
      events.push('close');
      sockets.delete(socket);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    received,
    events,
    sockets,
    close: () =>
      new Promise<void>(r => {
        sockets.forEach(s => s.destroy());
        server.close(() => r());
      }),
  };
}

/** Connects to the relay; resolves once connected (at once: the kernel accepts). */
function connect(relay: LatencyRelay): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: relay.host,
      port: relay.port,
      allowHalfOpen: true,
    });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Writes `data` and resolves with the first chunk that comes back, and when. */
function exchange(
  socket: net.Socket,
  data: string,
): Promise<{ text: string; ms: number }> {
  const t0 = performance.now();
  return new Promise(resolve => {
    socket.once('data', chunk =>
      resolve({ text: chunk.toString(), ms: performance.now() - t0 }),
    );
    socket.write(data);
  });
}

/** The relay releases bytes up to half a millisecond early (timers tick in whole ms). */
const EARLY_PER_HOP = 0.5;

describe('startRelay', () => {
  const RTT = 80;
  let target: Awaited<ReturnType<typeof startTarget>>;
  let relay: LatencyRelay;

  beforeEach(async () => {
    target = await startTarget(chunk =>
      chunk.toString().startsWith('ping') ? Buffer.from(`pong`) : null,
    );
    relay = await startRelay({
      target: { host: '127.0.0.1', port: target.port },
      rttMs: RTT,
    });
  });
  afterEach(async () => {
    await relay.close();
    await target.close();
  });

  it('passes bytes unchanged and in order, both ways', async () => {
    const echo = await startTarget(chunk => chunk);
    const echoRelay = await startRelay({
      target: { host: '127.0.0.1', port: echo.port },
      rttMs: 10,
    });
    try {
      const socket = await connect(echoRelay);
      const sent = randomBytes(1024 * 1024);
      const back: Buffer[] = [];
      let length = 0;
      const done = new Promise<void>(resolve =>
        socket.on('data', (chunk: Buffer) => {
          back.push(chunk);
          length += chunk.length;
          if (length === sent.length) resolve();
        }),
      );
      for (let i = 0; i < sent.length; i += 16 * 1024) {
        socket.write(sent.subarray(i, i + 16 * 1024));
      }
      await done;
      expect(Buffer.concat(back).equals(sent)).toBe(true);
      expect(Buffer.concat(echo.received.map(r => r.bytes)).equals(sent)).toBe(
        true,
      );
      socket.destroy();
    } finally {
      await echoRelay.close();
      await echo.close();
    }
  });

  it('costs a new connection one round trip for the handshake, then one per exchange', async () => {
    const socket = await connect(relay);
    const connectedAt = performance.now();
    const first = await exchange(socket, 'ping 1');
    // the first byte reaches the target after the SYN round trip and half an RTT
    expect(target.received[0].at - connectedAt).toBeGreaterThanOrEqual(
      RTT * 1.5 - EARLY_PER_HOP,
    );
    expect(first).toMatchObject({ text: 'pong' });
    expect(first.ms).toBeGreaterThanOrEqual(2 * RTT - 2 * EARLY_PER_HOP);
    // on the open connection: one round trip
    const second = await exchange(socket, 'ping 2');
    expect(second.ms).toBeGreaterThanOrEqual(RTT - 2 * EARLY_PER_HOP);
    expect(target.received.map(r => r.bytes.toString())).toEqual([
      'ping 1',
      'ping 2',
    ]);
    expect(relay.stats()).toEqual({ accepted: 1, open: 1 });
    socket.destroy();
  });

  it('applies a new round-trip time to the bytes that come after it', async () => {
    const socket = await connect(relay);
    await exchange(socket, 'ping 1');
    relay.setRtt(0);
    expect(relay.rttMs).toBe(0);
    const fast = await exchange(socket, 'ping 2');
    relay.setRtt(2 * RTT);
    const slow = await exchange(socket, 'ping 3');
    expect(slow.ms).toBeGreaterThanOrEqual(2 * RTT - 2 * EARLY_PER_HOP);
    expect(fast.ms).toBeLessThan(slow.ms);
    socket.destroy();
    expect(() => relay.setRtt(-1)).toThrow(
      'relay: the round-trip time must be a number >= 0, got -1',
    );
  });

  it("carries a half-close: the client's FIN reaches the target, whose answer still comes back", async () => {
    const socket = await connect(relay);
    const answer = new Promise<string>(resolve => {
      let text = '';
      socket.on('data', chunk => (text += chunk));
      socket.on('end', () => resolve(text));
    });
    socket.end('ping');
    expect(await answer).toBe('pongbye');
    await new Promise(r => socket.once('close', r));
    expect(target.events).toEqual(['connection', 'end', 'close']);
  });

  it('drops every connection on both sides, and counts them', async () => {
    const a = await connect(relay);
    const b = await connect(relay);
    await Promise.all([exchange(a, 'ping a'), exchange(b, 'ping b')]);
    expect(relay.stats()).toEqual({ accepted: 2, open: 2 });
    // the clients see the connection end (FIN) at once
    const closed = Promise.all(
      [a, b].map(s => new Promise(r => s.once('end', r))),
    );
    ignoreErrors([a, b]);
    expect(relay.dropConnections()).toBe(2);
    await closed;
    await waitFor(() => target.sockets.size === 0);
    expect(relay.stats()).toEqual({ accepted: 2, open: 0 });
    // and a new connection works as before
    const c = await connect(relay);
    expect((await exchange(c, 'ping c')).text).toBe('pong');
    expect(relay.stats()).toEqual({ accepted: 3, open: 1 });
    [a, b, c].forEach(s => s.destroy());
  });

  it('carries TLS to an HTTPS emulator, whose name the client checks', async () => {
    const emulator = await startEmulator({ tls: true });
    const tlsRelay = await startRelay({
      target: { host: '127.0.0.1', port: emulator.port },
      rttMs: 20,
    });
    try {
      const t0 = performance.now();
      const status = await new Promise<number>((resolve, reject) => {
        https
          .get(
            {
              host: tlsRelay.host,
              port: tlsRelay.port,
              servername: 'api.bitbucket.org',
              headers: { host: 'api.bitbucket.org' },
              path: '/_emulator/health',
              ca: emulator.caCert,
              agent: false,
            },
            res => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          )
          .on('error', reject);
      });
      expect(status).toBe(200);
      // a new HTTPS connection: TCP, TLS 1.3, then the request
      expect(performance.now() - t0).toBeGreaterThanOrEqual(
        3 * 20 - 6 * EARLY_PER_HOP,
      );
      expect(tlsRelay.stats().accepted).toBe(1);
    } finally {
      await tlsRelay.close();
      await emulator.close();
    }
  });
});

function ignoreErrors(sockets: net.Socket[]) {
  sockets.forEach(s => s.on('error', () => undefined));
}

async function waitFor(condition: () => boolean) {
  for (let i = 0; i < 100 && !condition(); i++) {
    await new Promise(r => setTimeout(r, 10));
  }
  expect(condition()).toBe(true);
}
