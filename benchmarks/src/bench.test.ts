import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchResult, runBenchmark, SMOKE_OPTIONS } from './bench';
import { parseArgs } from './cli';
import { planCpuPinning } from './cpuPinning';
import { renderReport } from './report';

// Starts the emulator and three backend processes: slow on a busy machine.
jest.setTimeout(180_000);

describe('yarn bench --smoke', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every backend for a few iterations and writes the JSON and the table', async () => {
    const outFile = join(dir, 'smoke.json');
    const lines: string[] = [];
    await runBenchmark({ ...SMOKE_OPTIONS, outFile, log: l => lines.push(l) });

    // No assertion on speed: only that everything ran and was recorded.
    const json: BenchResult = JSON.parse(readFileSync(outFile, 'utf8'));
    // the backends' logs are removed after a successful run
    expect(json.backends.map(b => b.log)).toEqual([null, null, null]);
    expect(json.schemaVersion).toBe(1);
    expect(json.machine).toMatchObject({
      cpus: expect.any(Number),
      node: process.version,
    });
    expect(json.machine.pinning).toBeNull(); // SMOKE_OPTIONS.pin is false
    expect(json.machine.phases).toEqual([
      expect.objectContaining({ latencyMs: SMOKE_OPTIONS.latencies[0] }),
    ]);
    expect(json.backends.map(b => b.kind)).toEqual([
      'upstream',
      'ours',
      'ours-sequential',
    ]);
    for (const backend of json.backends) {
      expect(backend.rssBeforeMb).toBeGreaterThan(0);
      expect(backend.rssAfterMb).toBeGreaterThan(0);
    }
    expect(json.cells).toHaveLength(3);
    for (const cell of json.cells) {
      expect(cell.signIn.latency).toMatchObject({
        samples: SMOKE_OPTIONS.signIns,
        p50: expect.any(Number),
        p95: expect.any(Number),
        p99: expect.any(Number),
      });
      // the sequential variant runs half as many refreshes
      const refreshes =
        cell.backend === 'ours-sequential'
          ? Math.ceil(SMOKE_OPTIONS.refreshes / 2)
          : SMOKE_OPTIONS.refreshes;
      expect(cell.refreshCached.latency.samples).toBe(refreshes);
      expect(cell.refreshUncached.latency.samples).toBe(refreshes);
      expect(cell.throughput.map(t => t.concurrency)).toEqual(
        SMOKE_OPTIONS.concurrency,
      );
      for (const t of cell.throughput) {
        expect(t.errors).toBe(0);
        expect(t.signInsPerSecond).toEqual(expect.any(Number));
      }
      expect(cell.signIn.cpuMsPerOp).toBeGreaterThan(0);
      // every sign-in exchanged one code at the emulator
      expect(cell.signIn.calls.token).toBe(1);
    }

    // what each module fetches, from the emulator's record
    const byKind = Object.fromEntries(json.cells.map(c => [c.backend, c]));
    expect(byKind.upstream.signIn.calls.restByPath).toEqual({ '/2.0/user': 1 });
    expect(byKind.ours.signIn.calls.restByPath).toEqual({
      '/2.0/user': 1,
      '/2.0/user/emails': 1,
      '/2.0/user/workspaces': 1,
      '/2.0/user/workspaces/bench/permission': 1,
    });
    // within the cache a refresh makes no call at all (the access token lives 2 h)
    expect(byKind.ours.refreshCached.calls).toMatchObject({
      token: 0,
      rest: 0,
    });
    expect(byKind.ours.refreshUncached.calls.rest).toBe(4);

    expect(json.ratios.map(r => r.metric)).toContain('sign-in p50 ms');
    expect(json.targets).toHaveLength(4);
    const report = renderReport(json);
    expect(report).toMatch(/^\| sign-in p50 \(ms\) +\|/m);
    expect(report).toContain('ours / upstream');
  });

  it('parses the command line', () => {
    expect(parseArgs(['--smoke'], '/pkg')).toMatchObject({
      signIns: SMOKE_OPTIONS.signIns,
      outFile: '/pkg/results/smoke.json',
    });
    expect(
      parseArgs(['--latencies', '0,20', '--backends=ours,upstream'], '/pkg'),
    ).toMatchObject({ latencies: [0, 20], backends: ['upstream', 'ours'] });
    expect(() => parseArgs(['--sign-ins', '0'], '/pkg')).toThrow(
      "--sign-ins expects a whole number >= 1, got '0'",
    );
    expect(() => parseArgs(['--backends', 'dex'], '/pkg')).toThrow(
      "unknown backend 'dex'",
    );
    expect(parseArgs([], '/pkg')).toMatchObject({
      pin: true,
      throughput: { windowMs: 5000, rounds: 5 },
    });
    expect(parseArgs(['--window', '12000'], '/pkg')).toMatchObject({
      throughput: { rampMs: 500, windowMs: 12000, rounds: 12 },
    });
    expect(parseArgs(['--no-pin'], '/pkg')).toMatchObject({ pin: false });
  });

  it('splits the CPUs this process may use between harness and backends', () => {
    const canPin =
      process.platform === 'linux' && os.availableParallelism() >= 2;
    const plan = planCpuPinning();
    // taskset is util-linux, on every Debian; the bench runs without it too
    expect(plan === null).toBe(!canPin);
    if (!plan) return;
    const harness = plan.harness.split(',').map(Number);
    const backends = plan.backends.split(',').map(Number);
    expect(backends).toHaveLength(1);
    expect(harness).not.toContain(backends[0]);
    expect(harness.length + 1).toBe(os.availableParallelism());
  });
});
