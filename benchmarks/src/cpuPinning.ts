import { execFileSync } from 'node:child_process';
import os from 'node:os';

/**
 * Which CPUs the harness and the backend under test run on. The emulator
 * stands in for Bitbucket, whose CPU is not the portal's: with its own
 * CPU(s), the harness (emulator and simulated browsers) does not take CPU
 * from the backend, and a module that makes more calls to Bitbucket is not
 * charged for the emulator's work. Backends take turns, so they share CPUs.
 */
export interface CpuPinning {
  harness: string;
  backends: string;
}

/**
 * The split for this machine: the last CPU for the backends, the others for
 * the harness; null (no pinning) with fewer than 2 CPUs or no `taskset`
 * (util-linux, Linux only).
 */
export function planCpuPinning(): CpuPinning | null {
  const cpus = os.availableParallelism();
  if (process.platform !== 'linux' || cpus < 2) return null;
  // the CPUs this process may use, as taskset lists them ("…: 0-3,6")
  let allowed: string;
  try {
    allowed = execFileSync('taskset', ['-cp', String(process.pid)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .split(':')
      .pop()!
      .trim();
  } catch {
    return null; // no taskset
  }
  const list = expand(allowed);
  if (list.length < 2) return null;
  return {
    harness: list.slice(0, -1).join(','),
    backends: String(list[list.length - 1]),
  };
}

/** `0-2,5` → [0, 1, 2, 5] */
function expand(ranges: string): number[] {
  return ranges.split(',').flatMap(part => {
    const [from, to] = part.split('-').map(Number);
    return Array.from({ length: (to ?? from) - from + 1 }, (_, i) => from + i);
  });
}

/** Moves a process and all its threads onto `cpus` (a taskset list). */
export function pinProcess(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], {
    stdio: 'ignore',
  });
}
