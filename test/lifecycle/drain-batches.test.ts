/**
 * The drain's batching on its own (src/lifecycle/drain.ts): the pause between batches is
 * `batchIntervalMs`, shortened so every batch fits in `shutdownMs`; sockets already closed are
 * not counted; a hurry skips the pauses; every option has a default and a range.
 */
import { describe, expect, it } from 'vitest';
import { OutOfRangeError } from '../../src/errors.js';
import {
  closeInBatches,
  DRAIN_DEFAULTS,
  resolveDrainOptions,
  type Drainable,
} from '../../src/lifecycle/drain.js';
import type { SocketDrainEvent } from '../../src/telemetry/events.js';

class Socket implements Drainable {
  closed = false;
  code: number | null = null;
  close(code: number): void {
    this.closed = true;
    this.code = code;
  }
}

function sockets(count: number): Socket[] {
  return Array.from({ length: count }, () => new Socket());
}

describe('closeInBatches', () => {
  it('shortens the pause so that every batch fits in shutdownMs', async () => {
    const all = sockets(10);
    const events: SocketDrainEvent[] = [];
    const options = resolveDrainOptions({ batchSize: 2, batchIntervalMs: 2_000, shutdownMs: 50 });
    await closeInBatches(
      all,
      options,
      1012,
      'bye',
      (e) => events.push(e),
      new AbortController().signal,
    );
    expect(events.map((e) => [e.count, e.index, e.intervalMs])).toEqual([
      [2, 0, 10],
      [2, 1, 10],
      [2, 2, 10],
      [2, 3, 10],
      [2, 4, 0],
    ]);
    expect(all.every((socket) => socket.code === 1012)).toBe(true);
  });

  it('does not count sockets that closed meanwhile, and emits nothing without sockets', async () => {
    const all = sockets(3);
    all[1]!.closed = true;
    const events: SocketDrainEvent[] = [];
    const options = resolveDrainOptions({ batchSize: 10 });
    await closeInBatches(
      all,
      options,
      1012,
      'bye',
      (e) => events.push(e),
      new AbortController().signal,
    );
    expect(events).toEqual([{ count: 2, total: 3, index: 0, intervalMs: 0 }]);
    await closeInBatches(
      [],
      options,
      1012,
      'bye',
      (e) => events.push(e),
      new AbortController().signal,
    );
    expect(events).toHaveLength(1);
  });

  it('skips the pauses once hurried', async () => {
    const hurry = new AbortController();
    hurry.abort();
    const options = resolveDrainOptions({
      batchSize: 1,
      batchIntervalMs: 60_000,
      shutdownMs: 600_000,
    });
    const events: SocketDrainEvent[] = [];
    await closeInBatches(sockets(3), options, 1012, 'bye', (e) => events.push(e), hurry.signal);
    expect(events.map((e) => e.count)).toEqual([1, 1, 1]);
  });
});

describe('resolveDrainOptions', () => {
  it('has a default for every option', () => {
    expect(resolveDrainOptions()).toEqual(DRAIN_DEFAULTS);
    expect(DRAIN_DEFAULTS).toEqual({
      batchSize: 10_000,
      batchIntervalMs: 2_000,
      shutdownMs: 15_000,
      requestDeadlineMs: 10_000,
    });
  });

  it('refuses values out of range, naming the option', () => {
    expect(() => resolveDrainOptions({ batchSize: 0 })).toThrow(OutOfRangeError);
    expect(() => resolveDrainOptions({ requestDeadlineMs: -5 })).toThrow(
      'drain.requestDeadlineMs must be an integer of at least 0, got -5',
    );
    expect(() => resolveDrainOptions({ batchIntervalMs: Number.NaN })).toThrow(
      'drain.batchIntervalMs',
    );
    expect(resolveDrainOptions({ requestDeadlineMs: 0, shutdownMs: 0 })).toMatchObject({
      requestDeadlineMs: 0,
      shutdownMs: 0,
    });
  });
});
