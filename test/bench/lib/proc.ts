/**
 * Linux process accounting from /proc: CPU time (user + system) and RSS of a process by pid, and
 * the kernel's slab memory (socket buffers live there, outside any process's RSS).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU time a process has used so far, in ms (user + system; resolution 1/CLK_TCK s). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: fields are counted after its closing paren.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  return ((user + system) * 1000) / clockTicks();
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** Kernel slab memory, in bytes (socket buffers and other kernel objects). */
export function slabBytes(): number {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const match = /^Slab:\s+(\d+) kB/m.exec(meminfo);
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** CPU used by `pid` while `work` runs: ms, and the wall-clock ms it took. */
export async function cpuDuring<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<{ value: T; cpuMs: number; wallMs: number }> {
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const value = await work();
  return { value, cpuMs: cpuMs(pid) - cpu0, wallMs: performance.now() - t0 };
}

/**
 * CPU time the whole machine has been busy so far, in ms summed over cores (/proc/stat: every
 * state but idle and iowait): with the processes' own times it shows where the cores went.
 */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = ticks;
  return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / clockTicks();
}
