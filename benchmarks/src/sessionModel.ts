import { RunningBackend } from './backends';
import { Browser, RefreshOutcome } from './driver';
import { BenchNetwork } from './network';
import { BackendKind } from './protocol';
import { isBackendCall, latencyStats, LatencyStats } from './stats';

/**
 * The session model: one user's working day, in simulated time. The user
 * signs in once, then loads a page every `pageLoadEveryMinutes` for `hours`;
 * every `burstEvery`-th page load opens `burstTabs` tabs at once (a restored
 * window, links opened together), which call `/refresh` at the same moment
 * with the same cookie. A tab whose `/refresh` gives no session is signed
 * out; when no tab of a page load got a session, the user signs in again.
 */
export interface SessionOptions {
  hours: number;
  pageLoadEveryMinutes: number;
  burstEvery: number;
  burstTabs: number;
}

/** What one backend's simulated day cost and gave. */
export interface SessionResult {
  backend: BackendKind;
  rttMs: number;
  hours: number;
  pageLoads: number;
  /** `/refresh` requests: one per tab. */
  tabs: number;
  signedOutTabs: number;
  /**
   * Tabs of the page loads on which the backend called Bitbucket (a token
   * or REST call): those tabs waited on at least one round trip to it. A
   * percentile of `refresh` has no Bitbucket round trip in it only while
   * this share of `tabs` stays below it.
   */
  tabsOnBitbucketLoads: number;
  /** The first sign-in and every sign-in again after all tabs were signed out. */
  signIns: number;
  restCalls: number;
  tokenCalls: number;
  restCallsPerUserHour: number;
  tokenCallsPerUserHour: number;
  /** The page loads' `/refresh` time, tabs that got a session. */
  refresh: LatencyStats;
  /** Why tabs were signed out (the first few answers). */
  signedOutBecause: string[];
}

interface UserState {
  backend: RunningBackend;
  browser: Browser;
  user: string;
  ms: number[];
  tabs: number;
  signedOutTabs: number;
  tabsOnBitbucketLoads: number;
  signIns: number;
  restCalls: number;
  tokenCalls: number;
  signedOutBecause: string[];
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * Runs the simulated day for every backend at once in simulated time (the
 * backends take turns at each page load), at the network's current RTT.
 * Every page load is cold: the simulated minutes between them outlast any
 * keep-alive, so the backend's connections are dropped first.
 */
export async function runSessionModel(
  options: SessionOptions & {
    rttMs: number;
    backends: RunningBackend[];
    network: BenchNetwork;
    env: string;
    /** One Bitbucket user per backend. */
    users: string[];
    consentMs: number;
    /** Moves the clock of the harness, the emulator and every backend on. */
    advanceClock(ms: number): Promise<void>;
    /** The simulated wall clock (for the browsers' cookies). */
    clock(): number;
    log(line: string): void;
  },
): Promise<SessionResult[]> {
  const { network, env } = options;
  const emulator = network.emulator;
  const states: UserState[] = options.backends.map((backend, i) => ({
    backend,
    browser: new Browser(backend.url, emulator, {
      tabs: options.burstTabs,
      clock: options.clock,
    }),
    user: options.users[i],
    ms: [],
    tabs: 0,
    signedOutTabs: 0,
    tabsOnBitbucketLoads: 0,
    signIns: 0,
    restCalls: 0,
    tokenCalls: 0,
    signedOutBecause: [],
  }));

  /**
   * Runs `step` for one user, counting the calls their backend made to
   * Bitbucket; returns how many it made.
   */
  const counted = async (state: UserState, step: () => Promise<void>) => {
    await network.dropConnections(state.backend.kind);
    emulator.resetCalls();
    await step();
    const calls = emulator.calls().filter(isBackendCall);
    for (const call of calls) {
      if (call.path === '/site/oauth2/access_token') state.tokenCalls += 1;
      else state.restCalls += 1;
    }
    return calls.length;
  };
  const signIn = async (state: UserState) => {
    await state.browser.signIn(env, state.user, 'account', options.consentMs);
    state.signIns += 1;
  };

  const pageLoads = Math.floor(
    (options.hours * 60) / options.pageLoadEveryMinutes,
  );
  try {
    for (const state of states) await counted(state, () => signIn(state));
    for (let load = 1; load <= pageLoads; load++) {
      await options.advanceClock(options.pageLoadEveryMinutes * 60_000);
      const tabs = load % options.burstEvery === 0 ? options.burstTabs : 1;
      for (const state of states) {
        let signedInAgain = false;
        const calls = await counted(state, async () => {
          const outcomes: RefreshOutcome[] = await Promise.all(
            Array.from({ length: tabs }, () => state.browser.tryRefresh(env)),
          );
          state.tabs += tabs;
          for (const outcome of outcomes) {
            if (outcome.ok) {
              state.ms.push(outcome.timed.ms);
            } else {
              state.signedOutTabs += 1;
              if (state.signedOutBecause.length < 5) {
                state.signedOutBecause.push(
                  `page load ${load}: ${outcome.status} ${outcome.message}`,
                );
              }
            }
          }
          if (outcomes.every(o => !o.ok) || !state.browser.hasSession()) {
            signedInAgain = true;
            await signIn(state);
          }
        });
        // a sign-in again is not the page load's /refresh: its calls do not count here
        if (calls > 0 && !signedInAgain) state.tabsOnBitbucketLoads += tabs;
      }
    }
  } finally {
    states.forEach(state => state.browser.close());
  }

  return states.map(state => {
    const result: SessionResult = {
      backend: state.backend.kind,
      rttMs: options.rttMs,
      hours: options.hours,
      pageLoads,
      tabs: state.tabs,
      signedOutTabs: state.signedOutTabs,
      tabsOnBitbucketLoads: state.tabsOnBitbucketLoads,
      signIns: state.signIns,
      restCalls: state.restCalls,
      tokenCalls: state.tokenCalls,
      restCallsPerUserHour: round2(state.restCalls / options.hours),
      tokenCallsPerUserHour: round2(state.tokenCalls / options.hours),
      refresh: latencyStats(state.ms),
      signedOutBecause: state.signedOutBecause,
    };
    options.log(
      `session model, ${state.backend.kind}: ${result.tabs} tabs in ${pageLoads} page loads over ${options.hours} h, ${result.signedOutTabs} signed out, ${result.tabsOnBitbucketLoads} on page loads that called Bitbucket, ${result.signIns} sign-ins, ${result.restCallsPerUserHour} REST and ${result.tokenCallsPerUserHour} token calls per user-hour, /refresh p50 ${result.refresh.p50} ms`,
    );
    return result;
  });
}
