/**
 * One request the emulator received.
 *
 * @public
 */
export interface EmulatorCall {
  method: string;
  /** The pathname only, without the query. */
  path: string;
  /**
   * The raw query string without a leading `?`, with the values of `code`,
   * `client_secret`, `refresh_token` and `access_token` replaced by `REDACTED`.
   */
  query: string;
  /** The HTTP status answered; 0 when the request was never answered. */
  status: number;
  /** Arrival time in ms (`performance.timeOrigin + performance.now()`). */
  startedAt: number;
  /** Time the answer was sent (or the connection closed), same clock. */
  endedAt: number;
  durationMs: number;
  /** The `grant_type` of a token endpoint request. */
  grantType?: string;
}

const SECRET_PARAMS = new Set([
  'code',
  'client_secret',
  'refresh_token',
  'access_token',
]);

/** Replaces the values of secret parameters in a raw query string. */
export function sanitizeQuery(rawQuery: string): string {
  if (!rawQuery) {
    return '';
  }
  return rawQuery
    .split('&')
    .map(part => {
      const eq = part.indexOf('=');
      const rawName = eq === -1 ? part : part.slice(0, eq);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        // keep the raw name
      }
      return SECRET_PARAMS.has(name.toLowerCase())
        ? `${rawName}=REDACTED`
        : part;
    })
    .join('&');
}

/** The current time on the clock used for recorded calls. */
export function clockNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A call that is still being answered. */
export interface PendingCall {
  /** Records the answer; only the first call has an effect. */
  finish(status: number): void;
  setGrantType(grantType: string | undefined): void;
}

interface Entry {
  call: Omit<EmulatorCall, 'status' | 'endedAt' | 'durationMs'> &
    Partial<EmulatorCall>;
  done: boolean;
}

/** Keeps the record of calls, in arrival order. */
export class CallRecorder {
  private entries: Entry[] = [];

  begin(method: string, path: string, rawQuery: string): PendingCall {
    const entry: Entry = {
      call: {
        method,
        path,
        query: sanitizeQuery(rawQuery),
        startedAt: clockNow(),
      },
      done: false,
    };
    this.entries.push(entry);
    return {
      finish: status => {
        if (entry.done) {
          return;
        }
        entry.done = true;
        const endedAt = clockNow();
        entry.call.status = status;
        entry.call.endedAt = endedAt;
        entry.call.durationMs = endedAt - entry.call.startedAt;
      },
      setGrantType: grantType => {
        if (grantType) {
          entry.call.grantType = grantType;
        } else {
          delete entry.call.grantType;
        }
      },
    };
  }

  /** Answered (or abandoned) calls, in arrival order. */
  calls(): EmulatorCall[] {
    return this.entries
      .filter(e => e.done)
      .map(e => {
        const {
          method,
          path,
          query,
          status,
          startedAt,
          endedAt,
          durationMs,
          grantType,
        } = e.call as EmulatorCall;
        const call: EmulatorCall = {
          method,
          path,
          query,
          status,
          startedAt,
          endedAt,
          durationMs,
        };
        if (grantType !== undefined) {
          call.grantType = grantType;
        }
        return call;
      });
  }

  reset(): void {
    this.entries = [];
  }
}
