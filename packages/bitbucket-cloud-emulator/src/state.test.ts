import { CODE_TTL_MS, EmulatorState, GrantError } from './state';

const GRANT = { clientId: 'client', userUuid: '{u1}', scopes: ['account'] };

function stateAt(clock: { now: number }) {
  return new EmulatorState(
    { consumers: [], users: [] },
    {
      accessTokenTtlSeconds: 7200,
      rotateRefreshTokens: true,
      now: () => clock.now,
    },
  );
}

const exchangeError = (state: EmulatorState, code: string) => {
  try {
    state.redeemCode({ code, clientId: 'client' });
    return 'exchanged';
  } catch (error) {
    return (error as GrantError).message;
  }
};

describe('authorization codes', () => {
  it('keeps an expired code as long again to say it expired, then forgets it', () => {
    const clock = { now: 1_000_000 };
    const state = stateAt(clock);
    const old = state.issueCode(GRANT);
    clock.now += CODE_TTL_MS + 1;
    expect(exchangeError(state, old)).toBe(
      'The authorization code has expired.',
    );
    clock.now += CODE_TTL_MS; // kept twice its lifetime: purged at the next issue
    state.issueCode(GRANT);
    expect(exchangeError(state, old)).toBe(
      'The authorization code is invalid.',
    );
  });

  it('issuing a code visits only the codes it purges, not every code held (a bench holds 50,000)', () => {
    const clock = { now: 1_000_000 };
    const state = stateAt(clock);
    for (let i = 0; i < 1000; i++) state.issueCode(GRANT);
    clock.now += 2 * CODE_TTL_MS; // the first 1,000 are past their keep time
    for (let i = 0; i < 1000; i++) state.issueCode(GRANT);
    const codes = (state as unknown as { codes: Map<string, unknown> }).codes;
    expect(codes.size).toBe(1000);
    let visited = 0;
    const own = Map.prototype[Symbol.iterator];
    function* counted() {
      for (const entry of own.call(codes)) {
        visited += 1;
        yield entry;
      }
    }
    Object.defineProperty(codes, Symbol.iterator, { value: counted });
    state.issueCode(GRANT);
    expect(codes.size).toBe(1001);
    expect(visited).toBe(1); // the first code is still kept: the purge stops there
  });
});
