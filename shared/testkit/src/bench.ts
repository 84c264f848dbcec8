import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/** Helpers the benches share: latency percentiles and a server's CPU time and memory from /proc. */

/** The p-th percentile (0–100) of ascending `sorted` values, NaN when there are none. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

let clockTicks: number | undefined;

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces): [0] state, [1] parent pid, [11] utime, [12] stime. */
function statFields(pid: number | string): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function ticksPerSecond(): number {
  return (clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100);
}

/** Every process now: its parent, its own ticks (utime + stime) and those of the children it has reaped (cutime + cstime). */
function processTable(): Map<number, { parent: number; own: number; reaped: number }> {
  const out = new Map<number, { parent: number; own: number; reaped: number }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let f: string[];
    try {
      f = statFields(entry);
    } catch {
      continue; // exited while we looked
    }
    out.set(Number(entry), { parent: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) });
  }
  return out;
}

/**
 * CPU seconds (user + system) a process has used so far, and with `withChildren` its live child
 * processes too (cluster workers). Measured by the kernel, so other load on the machine does not count.
 */
export function cpuSeconds(pid: number, withChildren = false): number {
  const own = statFields(pid);
  let ticks = Number(own[11]) + Number(own[12]);
  if (withChildren) for (const p of processTable().values()) if (p.parent === pid) ticks += p.own;
  return ticks / ticksPerSecond();
}

/**
 * CPU seconds (user + system) of the children a process has waited for (cutime + cstime): for a
 * test's own pid, the client tools it ran (swaks, curl, python3) that have exited.
 */
export function reapedCpuSeconds(pid: number): number {
  const f = statFields(pid);
  return (Number(f[13]) + Number(f[14])) / ticksPerSecond();
}

/**
 * CPU seconds (user + system) of a whole process tree: the process, every live descendant, and
 * the children each of them has already reaped (cutime + cstime). For servers that fork a process
 * per connection or per login (Dovecot, Postfix), so the work of processes gone by now counts too.
 */
export function treeCpuSeconds(pid: number): number {
  const table = processTable();
  if (!table.has(pid)) throw new Error(`no process ${pid}`);
  let ticks = 0;
  for (const [p, t] of table) {
    for (let q: number | undefined = p; q !== undefined && q > 0; q = table.get(q)?.parent) {
      if (q === pid) {
        ticks += t.own + t.reaped;
        break;
      }
    }
  }
  return ticks / ticksPerSecond();
}

/** A process's resident memory in MiB, now (VmRSS) and at its peak (VmHWM); NaN where /proc has no figure (exited). */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}
