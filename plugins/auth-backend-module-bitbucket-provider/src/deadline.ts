/**
 * One time limit for every Bitbucket call of a sign-in or a refresh
 * (`signInTimeout`): pages, parallel calls and a 429's wait all share it,
 * so that a slow or hostile answer cannot hold a request for longer.
 */
export class Deadline {
  readonly #end: number;

  constructor(readonly totalMs: number) {
    this.#end = performance.now() + totalMs;
  }

  /** Milliseconds left, 0 when it passed. */
  remaining(): number {
    return Math.max(0, this.#end - performance.now());
  }

  expired(): boolean {
    return this.remaining() === 0;
  }

  /** The time limit of one call: `requestTimeout`, or less when the deadline is nearer. */
  callTimeout(requestTimeoutMs: number): number {
    return Math.max(1, Math.min(requestTimeoutMs, this.remaining()));
  }
}
