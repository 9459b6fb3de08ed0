/**
 * Profiling commands a bench child process serves over IPC (gateway and workers): CPU profiles,
 * allocation sampling that includes the garbage the scavenger collects, and heap snapshots.
 * Used while tuning; the suites themselves only read CPU and memory from /proc.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { writeHeapSnapshot } from 'node:v8';
import { gc } from './runtime.js';

export function profilingCommands(): Record<string, (args: never) => unknown> {
  let session: Session | null = null;
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
    /** A heap snapshot (after a full GC) written to `path`. */
    heapSnapshot: ({ path }: { path: string }) => {
      gc();
      return writeHeapSnapshot(path);
    },
  };
}
