/**
 * A fault for one endpoint. When several effects are set, latency comes
 * first, then `hang`, then `status`, then `malformedJson`/`omitFields`.
 *
 * @public
 */
export interface EndpointFault {
  /** Answer this status with an error body of the endpoint's shape instead of the real answer. */
  status?: number;
  /** Probability (0..1) that the fault applies to a request; default 1. */
  rate?: number;
  /** Apply only to the next N matching requests, then stop. */
  times?: number;
  /** Sends a `Retry-After` header with this many seconds (meant for status 429). */
  retryAfterSeconds?: number;
  /** Never answer; the socket stays open until the client gives up or the emulator closes. */
  hang?: boolean;
  /** Answer 200 with the real JSON body cut in half. */
  malformedJson?: boolean;
  /** Extra latency for this endpoint, in ms. */
  latencyMs?: number;
  /** Answer normally but delete these top-level fields from the JSON body. */
  omitFields?: string[];
  /**
   * Answer normally but set these top-level fields of the JSON body (after
   * `omitFields`), e.g. `{ "values": [] }` or a `next` link to elsewhere.
   */
  setFields?: Record<string, unknown>;
}

/**
 * Faults to inject. Replaces whatever was configured before.
 *
 * @public
 */
export interface FaultConfig {
  /** Fixed latency for every request, overriding the start-up value. */
  latencyMs?: number;
  /** Uniform random extra latency 0..N ms for every request, overriding the start-up value. */
  randomLatencyMs?: number;
  /** Faults by exact pathname, e.g. `/2.0/user` or `/site/oauth2/access_token`. */
  endpoints?: Record<string, EndpointFault>;
}

/** What the injector decided for one request. */
export interface FaultDecision {
  /** Total latency to add before anything else, in ms. */
  latencyMs: number;
  /** The endpoint fault that applies to this request, if any. */
  fault?: EndpointFault;
}

/**
 * Validates a fault configuration and returns a copy; errors name the bad field.
 */
export function validateFaults(value: unknown): FaultConfig {
  const fail = (path: string, message: string): never => {
    throw new Error(`Invalid fault configuration: ${path} ${message}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('(root)', 'must be an object');
  }
  const input = value as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!['latencyMs', 'randomLatencyMs', 'endpoints'].includes(key)) {
      fail(
        key,
        'is not a known field (expected latencyMs, randomLatencyMs, endpoints)',
      );
    }
  }
  const nonNegative = (v: unknown, path: string): number | undefined => {
    if (v === undefined) {
      return undefined;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      return fail(path, 'must be a number >= 0');
    }
    return v;
  };

  const result: FaultConfig = {};
  const latencyMs = nonNegative(input.latencyMs, 'latencyMs');
  if (latencyMs !== undefined) {
    result.latencyMs = latencyMs;
  }
  const randomLatencyMs = nonNegative(input.randomLatencyMs, 'randomLatencyMs');
  if (randomLatencyMs !== undefined) {
    result.randomLatencyMs = randomLatencyMs;
  }
  if (input.endpoints === undefined) {
    return result;
  }
  if (
    typeof input.endpoints !== 'object' ||
    input.endpoints === null ||
    Array.isArray(input.endpoints)
  ) {
    return fail('endpoints', 'must be an object keyed by pathname');
  }

  result.endpoints = {};
  for (const [path, raw] of Object.entries(input.endpoints)) {
    const at = `endpoints['${path}']`;
    if (!path.startsWith('/')) {
      fail(at, 'must be keyed by a pathname starting with "/"');
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      fail(at, 'must be an object');
    }
    const f = raw as Record<string, unknown>;
    const known = [
      'status',
      'rate',
      'times',
      'retryAfterSeconds',
      'hang',
      'malformedJson',
      'latencyMs',
      'omitFields',
      'setFields',
    ];
    for (const key of Object.keys(f)) {
      if (!known.includes(key)) {
        fail(
          `${at}.${key}`,
          `is not a known field (expected one of: ${known.join(', ')})`,
        );
      }
    }
    const fault: EndpointFault = {};
    if (f.status !== undefined) {
      if (
        typeof f.status !== 'number' ||
        !Number.isInteger(f.status) ||
        f.status < 200 ||
        f.status > 599
      ) {
        fail(`${at}.status`, 'must be an HTTP status code between 200 and 599');
      }
      fault.status = f.status as number;
    }
    if (f.rate !== undefined) {
      if (typeof f.rate !== 'number' || !(f.rate >= 0 && f.rate <= 1)) {
        fail(`${at}.rate`, 'must be a number between 0 and 1');
      }
      fault.rate = f.rate as number;
    }
    if (f.times !== undefined) {
      if (
        typeof f.times !== 'number' ||
        !Number.isInteger(f.times) ||
        f.times < 0
      ) {
        fail(`${at}.times`, 'must be a whole number >= 0');
      }
      fault.times = f.times as number;
    }
    const retryAfter = nonNegative(
      f.retryAfterSeconds,
      `${at}.retryAfterSeconds`,
    );
    if (retryAfter !== undefined) {
      fault.retryAfterSeconds = retryAfter;
    }
    const endpointLatency = nonNegative(f.latencyMs, `${at}.latencyMs`);
    if (endpointLatency !== undefined) {
      fault.latencyMs = endpointLatency;
    }
    for (const flag of ['hang', 'malformedJson'] as const) {
      if (f[flag] !== undefined) {
        if (typeof f[flag] !== 'boolean') {
          fail(`${at}.${flag}`, 'must be true or false');
        }
        fault[flag] = f[flag] as boolean;
      }
    }
    if (f.omitFields !== undefined) {
      if (
        !Array.isArray(f.omitFields) ||
        !f.omitFields.every(x => typeof x === 'string')
      ) {
        fail(`${at}.omitFields`, 'must be a list of field names');
      }
      fault.omitFields = [...(f.omitFields as string[])];
    }
    if (f.setFields !== undefined) {
      if (
        typeof f.setFields !== 'object' ||
        f.setFields === null ||
        Array.isArray(f.setFields)
      ) {
        fail(`${at}.setFields`, 'must be an object of field names and values');
      }
      fault.setFields = { ...(f.setFields as Record<string, unknown>) };
    }
    result.endpoints[path] = fault;
  }
  return result;
}

/**
 * Holds the current faults and decides, request by request, which apply.
 */
export class FaultInjector {
  private config: FaultConfig = {};

  constructor(
    private readonly defaults: { latencyMs: number; randomLatencyMs: number },
    private readonly random: () => number = Math.random,
  ) {}

  set(config: FaultConfig): void {
    this.config = validateFaults(config);
  }

  clear(): void {
    this.config = {};
  }

  /** The current configuration; `times` shows how many applications remain. */
  get(): FaultConfig {
    return JSON.parse(JSON.stringify(this.config));
  }

  /** Decides the latency and fault of one request, consuming one of `times`. */
  decide(pathname: string): FaultDecision {
    const fixed = this.config.latencyMs ?? this.defaults.latencyMs;
    const spread = this.config.randomLatencyMs ?? this.defaults.randomLatencyMs;
    let latencyMs = fixed + (spread > 0 ? this.random() * spread : 0);

    const candidate = this.config.endpoints?.[pathname];
    if (!candidate) {
      return { latencyMs };
    }
    if (candidate.times !== undefined && candidate.times <= 0) {
      return { latencyMs };
    }
    const rate = candidate.rate ?? 1;
    if (rate < 1 && this.random() >= rate) {
      return { latencyMs };
    }
    if (candidate.times !== undefined) {
      candidate.times -= 1;
    }
    latencyMs += candidate.latencyMs ?? 0;
    return { latencyMs, fault: candidate };
  }
}
