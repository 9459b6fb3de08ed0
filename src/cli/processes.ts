/**
 * `gen-gateway --processes N`: N gateway processes share the listening port (node:cluster; the
 * primary accepts and hands connections out round-robin, and otherwise only supervises). Each
 * process is a node of the gateway cluster on NATS with its own node id, so broadcasts, Presence
 * and disconnects span them as they span separate gateways.
 */
import cluster, { type Worker } from 'node:cluster';
import { hostname } from 'node:os';
import type { Logger } from '../log/logger.js';
import { MAX_PROCESSES } from './args.js';

/** Options of the process supervisor; every default is here. */
export const PROCESS_DEFAULTS = {
  /** Processes when neither `--processes` nor the config's `processes` says. */
  processes: 1,
  /** Upper bound on `--processes` (a typo such as 400 must not fork 400 gateways). */
  maxProcesses: MAX_PROCESSES,
  /** First restart delay after a process died; doubles on each death in a row … */
  restartInitialMs: 500,
  /** … up to this. A crash loop restarts at most once per `restartMaxMs`. */
  restartMaxMs: 30_000,
  /** A process that lived this long was healthy: its next death restarts after the initial delay. */
  stableMs: 10_000,
} as const;

/** The environment variable that tells a forked process its index (0 … N−1). */
export const PROCESS_INDEX_ENV = 'GEN_GATEWAY_PROCESS_INDEX';

/** Exit code of a process that cannot start because of its configuration (not worth restarting). */
export const CONFIG_EXIT_CODE = 2;

/** This process's index when it is one of `--processes N` (a cluster worker), else null. */
export function processIndex(): number | null {
  if (!cluster.isWorker) return null;
  const index = Number(process.env[PROCESS_INDEX_ENV]);
  return Number.isInteger(index) && index >= 0 ? index : null;
}

/** The node id of process `index`: the configured node id (or the host name), dash, index. */
export function processNodeId(configured: string | undefined, index: number): string {
  return `${configured ?? hostname()}-${index}`;
}

/** The restart delay after `deaths` deaths in a row (1 = the first). */
export function restartDelayMs(deaths: number): number {
  return Math.min(
    PROCESS_DEFAULTS.restartInitialMs * 2 ** Math.max(0, deaths - 1),
    PROCESS_DEFAULTS.restartMaxMs,
  );
}

interface Slot {
  index: number;
  worker: Worker | null;
  startedAt: number;
  /** Deaths in a row (reset by a process that lived `stableMs`). */
  deaths: number;
  restart: NodeJS.Timeout | null;
}

/**
 * Runs in the primary: forks `count` gateway processes (this same command and arguments), restarts
 * one that dies with backoff, forwards SIGINT/SIGTERM as a graceful stop (a second signal kills
 * them) and resolves with the exit code once every process is gone. A process that exits with
 * CONFIG_EXIT_CODE stops them all: the others would fail the same way.
 */
export function superviseProcesses(count: number, logger: Logger): Promise<number> {
  const log = logger.child({ component: 'supervisor' });
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index,
    worker: null,
    startedAt: 0,
    deaths: 0,
    restart: null,
  }));
  let stopping = false;
  let exitCode = 0;
  let done!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (done = resolve));

  const finishIfEmpty = () => {
    if (stopping && slots.every((slot) => slot.worker === null)) done(exitCode);
  };

  const fork = (slot: Slot) => {
    slot.restart = null;
    const worker = cluster.fork({ [PROCESS_INDEX_ENV]: String(slot.index) });
    slot.worker = worker;
    slot.startedAt = performance.now();
    const pid = worker.process.pid;
    log.info({ process: slot.index, processPid: pid }, 'gateway process started');
    worker.on('exit', (code, signal) => {
      slot.worker = null;
      if (stopping) {
        log.info({ process: slot.index, processPid: pid, code, signal }, 'gateway process stopped');
        if (code !== 0 && code !== null && exitCode === 0) exitCode = 1;
        finishIfEmpty();
        return;
      }
      if (code === CONFIG_EXIT_CODE) {
        log.fatal(
          { process: slot.index, processPid: pid, code },
          'gateway process refused its configuration; stopping all',
        );
        exitCode = CONFIG_EXIT_CODE;
        stop('SIGTERM');
        return;
      }
      const lived = performance.now() - slot.startedAt;
      slot.deaths = lived >= PROCESS_DEFAULTS.stableMs ? 1 : slot.deaths + 1;
      const delayMs = restartDelayMs(slot.deaths);
      log.error(
        {
          process: slot.index,
          processPid: pid,
          code,
          signal,
          livedMs: Math.round(lived),
          restartInMs: delayMs,
        },
        'gateway process died; restarting',
      );
      slot.restart = setTimeout(() => fork(slot), delayMs);
    });
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    for (const slot of slots) {
      if (slot.restart) clearTimeout(slot.restart);
      slot.restart = null;
      // SIGTERM whatever the signal: a terminal's Ctrl-C reaches the processes too, and they
      // ignore SIGINT so that it does not count as a second, hard signal.
      slot.worker?.process.kill('SIGTERM');
    }
    log.info({ signal }, 'stopping gateway processes');
    finishIfEmpty();
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) {
      stop(signal);
      return;
    }
    log.warn({ signal }, 'second signal, killing gateway processes');
    for (const slot of slots) slot.worker?.process.kill('SIGKILL');
    exitCode = 1;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  log.info({ processes: count }, 'starting gateway processes');
  for (const slot of slots) fork(slot);
  return finished;
}
