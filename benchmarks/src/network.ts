import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BitbucketCloudEmulator,
  createEmulatorTls,
  EmulatorSeed,
  startEmulator,
} from '@internal/bitbucket-cloud-emulator';
import { BackendKind } from './protocol';
import { LatencyRelay, startRelay } from './relay';

/**
 * How the bench puts Bitbucket's distance between the backends and the
 * emulator.
 *
 * - `relay` (the default): every round trip costs the RTT, handshakes
 *   included. The emulator serves HTTPS (a CA made for the run, trusted by
 *   the backends through NODE_EXTRA_CA_CERTS), behind one TCP relay per
 *   Bitbucket host per backend that delays each direction by half the RTT.
 *   A new connection then costs one RTT for TCP, one for TLS 1.3, and one
 *   per request, as over a real network.
 * - `per-request`: the emulator waits the RTT before answering each call a
 *   backend makes, and the relays add nothing: handshakes are free (the
 *   model of the earlier benchmarks, kept for comparison).
 */
export type NetworkModel = 'relay' | 'per-request';

/** The endpoints the backends call; per request, the latency goes on each. */
export const BACKEND_ENDPOINTS = [
  '/site/oauth2/access_token',
  '/2.0/user',
  '/2.0/user/emails',
  '/2.0/user/workspaces',
];

/** A backend's way to Bitbucket: one relay for the web host, one for the API host. */
export interface BackendRoute {
  /** What the backend connects to for bitbucket.org (token, authorize). */
  web: LatencyRelay;
  /** What the backend connects to for api.bitbucket.org. */
  api: LatencyRelay;
}

/** The emulator, the CA file, and a route per backend. */
export interface BenchNetwork {
  model: NetworkModel;
  emulator: BitbucketCloudEmulator;
  /** The CA of the run, for NODE_EXTRA_CA_CERTS. */
  caFile: string;
  route(kind: BackendKind): BackendRoute;
  /** The RTT of every backend's way to Bitbucket from now on. */
  setRtt(ms: number): void;
  /**
   * Drops every open connection of one backend to Bitbucket (both hosts),
   * then waits a moment, so that the backend has seen them go before its
   * next request: the state after an idle spell longer than any keep-alive.
   */
  dropConnections(kind: BackendKind): Promise<number>;
  /** Connections a backend opened to Bitbucket since the start. */
  connectionsOpened(kind: BackendKind): number;
  close(): Promise<void>;
}

/** Time for a backend to see its connections close (a FIN on loopback). */
const SETTLE_MS = 25;

export async function startBenchNetwork(options: {
  model: NetworkModel;
  seed: EmulatorSeed;
  backends: BackendKind[];
  runDir: string;
  /** The emulator's clock (the session model moves it on). */
  now?: () => number;
}): Promise<BenchNetwork> {
  const tls = await createEmulatorTls();
  const caFile = join(options.runDir, 'bitbucket-ca.pem');
  writeFileSync(caFile, tls.caCert);
  const emulator = await startEmulator({
    seed: options.seed,
    tls,
    now: options.now,
  });
  const target = { host: '127.0.0.1', port: emulator.port };
  const routes = new Map<BackendKind, BackendRoute>();
  try {
    for (const kind of options.backends) {
      routes.set(kind, {
        web: await startRelay({ target, rttMs: 0 }),
        api: await startRelay({ target, rttMs: 0 }),
      });
    }
  } catch (error) {
    await emulator.close();
    throw error;
  }
  const relays = () => [...routes.values()].flatMap(r => [r.web, r.api]);
  const routeOf = (kind: BackendKind) => {
    const route = routes.get(kind);
    if (!route) throw new Error(`no route for the ${kind} backend`);
    return route;
  };

  return {
    model: options.model,
    emulator,
    caFile,
    route: routeOf,
    setRtt(ms) {
      if (options.model === 'relay') {
        relays().forEach(relay => relay.setRtt(ms));
      } else {
        emulator.setFaults({
          endpoints: Object.fromEntries(
            BACKEND_ENDPOINTS.map(path => [path, { latencyMs: ms }]),
          ),
        });
      }
    },
    async dropConnections(kind) {
      const route = routeOf(kind);
      const dropped = route.web.dropConnections() + route.api.dropConnections();
      await sleep(SETTLE_MS);
      return dropped;
    },
    connectionsOpened(kind) {
      const route = routeOf(kind);
      return route.web.stats().accepted + route.api.stats().accepted;
    },
    async close() {
      await Promise.all(relays().map(relay => relay.close()));
      await emulator.close();
    },
  };
}
