/**
 * Profiling commands a bench child process serves over IPC (gateway and workers): CPU profiles,
 * allocation sampling that includes the garbage the scavenger collects, and heap snapshots.
 * Used while tuning; the suites themselves only read CPU and memory from /proc.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { writeHeapSnapshot } from 'node:v8';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { gc } from './runtime.js';

export function profilingCommands(): Record<string, (args: never) => unknown> {
  let session: Session | null = null;
  let gcWatch: { observer: PerformanceObserver; totals: Record<string, number> } | null = null;
  const open = (): Session => {
    if (session) throw new Error('a profile is already running');
    session = new Session();
    session.connect();
    return session;
  };
  const close = (): Session => {
    if (!session) throw new Error('no profile running');
    const running = session;
    session = null;
    return running;
  };
  const save = (running: Session, path: string, profile: unknown): string => {
    writeFileSync(path, JSON.stringify(profile));
    running.disconnect();
    return path;
  };
  return {
    /** CPU sampling every 100 µs until profileStop. */
    profileStart: async () => {
      const s = open();
      await s.post('Profiler.enable');
      await s.post('Profiler.setSamplingInterval', { interval: 100 });
      await s.post('Profiler.start');
    },
    profileStop: async ({ path }: { path: string }) => {
      const s = close();
      const { profile } = await s.post('Profiler.stop');
      return save(s, path, profile);
    },
    /** Allocation sampling (every 1 KiB allocated, including objects collected by either GC). */
    allocationProfileStart: async () => {
      const s = open();
      await s.post('HeapProfiler.enable');
      await s.post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    },
    allocationProfileStop: async ({ path }: { path: string }) => {
      const s = close();
      const { profile } = await s.post('HeapProfiler.stopSampling');
      return save(s, path, profile);
    },
    /** Counts garbage collections and their pause time by kind until gcWatchStop. */
    gcWatchStart: () => {
      if (gcWatch) throw new Error('a GC watch is already running');
      const totals = { scavenges: 0, scavengeMs: 0, majors: 0, majorMs: 0, other: 0, otherMs: 0 };
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
          if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
            totals.scavenges++;
            totals.scavengeMs += entry.duration;
          } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
            totals.majors++;
            totals.majorMs += entry.duration;
          } else {
            totals.other++;
            totals.otherMs += entry.duration;
          }
        }
      });
      observer.observe({ entryTypes: ['gc'] });
      gcWatch = { observer, totals };
    },
    gcWatchStop: () => {
      if (!gcWatch) throw new Error('no GC watch running');
      const { observer, totals } = gcWatch;
      gcWatch = null;
      observer.disconnect();
      return totals;
    },
    /** A heap snapshot (after a full GC) written to `path`. */
    heapSnapshot: ({ path }: { path: string }) => {
      gc();
      return writeHeapSnapshot(path);
    },
  };
}
