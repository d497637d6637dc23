import { EmulatorCall } from '@internal/bitbucket-cloud-emulator';
import { Timed } from './driver';

/** Latency distribution of one series, in ms. */
export interface LatencyStats {
  samples: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function latencyStats(values: number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    samples: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    mean: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1)),
    min: round(sorted[0] ?? NaN),
    max: round(sorted[sorted.length - 1] ?? NaN),
  };
}

/** Calls a backend makes to Bitbucket: the token endpoint and the REST API (not the user's consent pages). */
export function isBackendCall(call: EmulatorCall): boolean {
  return (
    call.path === '/site/oauth2/access_token' || call.path.startsWith('/2.0/')
  );
}

export function isRestCall(call: EmulatorCall): boolean {
  return call.path.startsWith('/2.0/');
}

/** What one series cost in calls to Bitbucket, per operation. */
export interface CallCounts {
  /** Token endpoint calls per operation. */
  token: number;
  /** REST (/2.0) calls per operation. */
  rest: number;
  /** REST calls per operation, by path. */
  restByPath: Record<string, number>;
}

export function countCalls(
  calls: EmulatorCall[],
  operations: number,
): CallCounts {
  const per = (n: number) => Math.round((n / operations) * 100) / 100;
  const byPath: Record<string, number> = {};
  let token = 0;
  let rest = 0;
  for (const call of calls) {
    if (call.path === '/site/oauth2/access_token') token++;
    if (isRestCall(call)) {
      rest++;
      byPath[call.path] = (byPath[call.path] ?? 0) + 1;
    }
  }
  return {
    token: per(token),
    rest: per(rest),
    restByPath: Object.fromEntries(
      Object.entries(byPath).map(([path, n]) => [path, per(n)]),
    ),
  };
}

/**
 * Sequential round trips to Bitbucket inside one request: the longest chain
 * of backend calls in which each call starts after the previous one was
 * answered. Calls made in parallel overlap and count once. Needs injected
 * latency to be meaningful: with none, the emulator may answer a call
 * before the next parallel one arrives.
 */
export function roundTrips(calls: EmulatorCall[]): number {
  const sorted = [...calls].sort((a, b) => a.startedAt - b.startedAt);
  const depth: number[] = [];
  for (let i = 0; i < sorted.length; i++) {
    depth[i] = 1;
    for (let j = 0; j < i; j++) {
      if (sorted[i].startedAt >= sorted[j].endedAt) {
        depth[i] = Math.max(depth[i], depth[j] + 1);
      }
    }
  }
  return Math.max(0, ...depth);
}

/**
 * Round trips of each timed request (run one at a time), from the
 * emulator's record: the backend calls that arrived while it was open.
 */
export function roundTripsPerRequest(
  requests: Timed[],
  calls: EmulatorCall[],
): number[] {
  const backendCalls = calls
    .filter(isBackendCall)
    .sort((a, b) => a.startedAt - b.startedAt);
  return requests.map(r =>
    roundTrips(
      backendCalls.filter(
        c => c.startedAt >= r.startedAt && c.startedAt <= r.endedAt,
      ),
    ),
  );
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}
