import type { BackendInfo } from './bench';
import {
  describeRoundRatios,
  MIN_THROUGHPUT_ROUNDS,
  quantile,
  roundRatios,
  rssLessSessions,
  throughputVerdict,
} from './verdict';

describe('the verdict arithmetic', () => {
  it('interpolates quantiles between ranks', () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.75)).toBe(3.25);
    expect(quantile([7], 0.25)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('pairs the rounds of ours and upstream and takes the median of their ratios', () => {
    // round 3 is a slow spell of the machine during ours' turn
    const r = roundRatios([100, 90, 40, 110, 95], [100, 100, 100, 100, 100]);
    expect(r.ratios).toEqual([1, 0.9, 0.4, 1.1, 0.95]);
    expect(r.median).toBe(0.95);
    expect(r.min).toBe(0.4);
    expect(r.max).toBe(1.1);
    expect(r.q1).toBe(0.9);
    expect(r.q3).toBe(1);
    // the ratio of the sums would have judged the slow spell: 0.87
    expect(435 / 500).toBeCloseTo(0.87);
    expect(describeRoundRatios(r)).toBe(
      'median of 5 per-round ratios; spread 0.40–1.10 (IQR 0.90–1.00)',
    );
  });

  it('leaves out rounds without a partner or without an upstream figure', () => {
    const r = roundRatios([10, 20, 30, 40], [10, 0, 15]);
    // 20 / 0 is Infinity, round 4 has no upstream round
    expect(r.ratios).toEqual([1, 2]);
    expect(r.median).toBe(1.5);
  });

  it(`judges throughput on ${MIN_THROUGHPUT_ROUNDS} rounds or more, and misses it on fewer`, () => {
    const five = throughputVerdict(
      50,
      32,
      { signInsPerSecond: 101, perRound: [100, 104, 98, 101, 103] },
      { signInsPerSecond: 100, perRound: [99, 100, 100, 102, 100] },
    );
    expect(five).toMatchObject({
      latencyMs: 50,
      target:
        'sign-ins/s at concurrency 32: ours / upstream, median of ≥ 5 interleaved rounds',
      value: 1.01,
      comparison: '≥',
      limit: 1,
      met: true,
    });
    expect(five.detail).toBe(
      'median of 5 per-round ratios; spread 0.98–1.04 (IQR 0.99–1.03); in all ours 101.0, upstream 100.0/s',
    );

    const four = throughputVerdict(
      50,
      32,
      { signInsPerSecond: 120, perRound: [120, 120, 120, 120] },
      { signInsPerSecond: 100, perRound: [100, 100, 100, 100] },
    );
    expect(four.value).toBe(1.2);
    expect(four.met).toBe(false);
    expect(four.detail).toContain(
      'not judged: 4 rounds, needs 5 (--window 5000 or more)',
    );

    const slower = throughputVerdict(
      0,
      32,
      { signInsPerSecond: 95, perRound: [95, 96, 94, 95, 95] },
      { signInsPerSecond: 100, perRound: [100, 100, 100, 100, 100] },
    );
    expect(slower).toMatchObject({ value: 0.95, met: false });
  });

  it("takes the live sessions' measured heap off the RSS difference, and shows both", () => {
    const info = (over: Partial<BackendInfo>): BackendInfo =>
      ({
        rssAfterSeriesMb: 280,
        heapUsedAfterSeriesMb: 100,
        liveSessionsAfterSeries: 0,
        ...over,
      } as BackendInfo);
    const ours = info({
      rssAfterSeriesMb: 300,
      heapUsedAfterSeriesMb: 112,
      liveSessionsAfterSeries: 8192,
    });
    const upstream = info({});
    // 8192 × 1536 bytes = 12 MiB of sessions: 20 − 12 = 8 MB
    const v = rssLessSessions(ours, upstream, 1536);
    expect(v).toMatchObject({ value: 8, limit: 5, met: false, unit: 'MB' });
    expect(v.detail).toBe(
      'RSS ours 300 MB, upstream 280 MB: +20.0 MB as measured, of which 8192 live sessions × 1536 bytes = 12.0 MB; heaps 112 and 100 MB, after a last-resort GC',
    );
    expect(rssLessSessions(ours, upstream, 2048)).toMatchObject({
      value: 4,
      met: true,
    });
    // no per-session figure: nothing taken off
    expect(rssLessSessions(ours, upstream, undefined)).toMatchObject({
      value: 20,
      met: false,
    });
  });
});
