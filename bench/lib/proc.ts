/**
 * CPU and memory of process trees, read from /proc: what every benchmark figure is made of.
 * CPU is utime+stime as % of ONE core; memory is VmRSS in MiB.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { sleep } from '../../test/helpers/stack.js';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcStat {
  pid: number;
  ppid: number;
  ticks: number;
  start: string;
}
export type Snapshot = Map<number, ProcStat>;

/** utime+stime, ppid and start time of a process, or null when it is gone. */
export function readStat(pid: number): ProcStat | null {
  let raw: string;
  try {
    raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // the command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'
  const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  if (f[0] === 'Z' || f[0] === 'X') return null;
  return { pid, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), start: f[19]! };
}

export function snapshot(): Snapshot {
  const out: Snapshot = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = readStat(Number(d));
    if (s) out.set(s.pid, s);
  }
  return out;
}

/** The roots and every descendant of them, in a snapshot. */
export function subtree(stats: Snapshot, roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const s of stats.values()) {
    const list = children.get(s.ppid) ?? [];
    list.push(s.pid);
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const seen = new Set<number>();
  const todo = roots.filter((r) => stats.has(r));
  while (todo.length) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** RSS (MiB) of the roots and their descendants. */
export function rssMiB(roots: readonly number[]): number {
  let kb = 0;
  for (const pid of subtree(snapshot(), roots)) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return kb / 1024;
}

/** Busy and total jiffies of the whole machine (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const v = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

/** Picks the pids of a group from a snapshot (so descendants born during a window are caught). */
export type Group = (s: Snapshot) => number[];

/**
 * CPU of named groups of processes over a window, sampled every `SAMPLE_MS`. A process seen at the first sample
 * counts from there; one born later counts from its start; one that exits mid-window loses at most one sample period.
 */
export class CpuWindow<G extends string> {
  private readonly first = new Map<G, Map<string, number>>();
  private readonly last = new Map<G, Map<string, number>>();
  private t0 = 0;
  private t1 = 0;
  private m0 = machineTicks();
  private m1 = this.m0;

  constructor(private readonly groups: Record<G, Group>) {}

  sample(): void {
    const stats = snapshot();
    const now = performance.now();
    const initial = this.t0 === 0;
    if (initial) {
      this.t0 = now;
      this.m0 = machineTicks();
    }
    this.t1 = now;
    this.m1 = machineTicks();
    for (const g of Object.keys(this.groups) as G[]) {
      const first = this.first.get(g) ?? new Map<string, number>();
      const last = this.last.get(g) ?? new Map<string, number>();
      for (const pid of this.groups[g](stats)) {
        const s = stats.get(pid);
        if (!s) continue;
        const key = `${pid}@${s.start}`;
        if (!first.has(key)) first.set(key, initial ? s.ticks : 0);
        last.set(key, s.ticks);
      }
      this.first.set(g, first);
      this.last.set(g, last);
    }
  }

  seconds(): number {
    return (this.t1 - this.t0) / 1000;
  }

  /** CPU of a group as % of one core. */
  percent(g: G): number {
    const first = this.first.get(g);
    const last = this.last.get(g);
    if (!first || !last || this.seconds() <= 0) return NaN;
    let ticks = 0;
    for (const [k, v] of last) ticks += v - (first.get(k) ?? 0);
    return (ticks / CLK_TCK / this.seconds()) * 100;
  }

  /** Busy CPU of the whole machine as % of one core. */
  machinePercent(): number {
    const total = this.m1.total - this.m0.total;
    return total > 0 ? ((this.m1.busy - this.m0.busy) / total) * os.cpus().length * 100 : NaN;
  }
}

const SAMPLE_MS = 500;

/** Samples the groups for `seconds`; `check` runs after each sample and may throw (a process died, a channel fell). */
export async function measure<G extends string>(
  groups: Record<G, Group>,
  seconds: number,
  check: () => void = () => undefined,
): Promise<CpuWindow<G>> {
  const w = new CpuWindow(groups);
  w.sample();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    await sleep(Math.min(SAMPLE_MS, Math.max(0, end - performance.now())));
    check();
    w.sample();
  }
  return w;
}

// ---------------------------------------------------------------------------------------------------------------
// statistics

export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Nearest-rank percentile. */
export function percentile(xs: readonly number[], p: number): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}
