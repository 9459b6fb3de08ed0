/**
 * The served service's state machine (src/worker/lifecycle.ts): only the moves of
 * WORKER_TRANSITIONS happen, each told once to the listeners; `closed` settles at the end.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import {
  Lifecycle,
  WORKER_TRANSITIONS,
  WorkerClosedError,
  type WorkerState,
} from '../../src/worker/lifecycle.js';

function recorded(): { lifecycle: Lifecycle; states: WorkerState[] } {
  const lifecycle = new Lifecycle(silentLogger());
  const states: WorkerState[] = [];
  lifecycle.listen((change) => states.push(change.state));
  return { lifecycle, states };
}

describe('Lifecycle', () => {
  it('goes starting → serving → reconnecting → serving → draining → stopped, and closed resolves', async () => {
    const { lifecycle, states } = recorded();
    lifecycle.set('serving', 'started');
    lifecycle.set('reconnecting', 'NATS connection lost');
    lifecycle.set('serving', 'NATS connection back');
    lifecycle.set('draining', 'drain requested');
    lifecycle.end('drained', null);
    expect(states).toEqual(['serving', 'reconnecting', 'serving', 'draining', 'stopped']);
    await expect(lifecycle.closed).resolves.toBeUndefined();
  });

  it('ignores a move that is not one: a connection back while draining keeps draining, nothing leaves stopped', () => {
    const { lifecycle, states } = recorded();
    lifecycle.set('serving', 'started');
    lifecycle.set('draining', 'drain requested');
    lifecycle.set('serving', 'NATS connection back');
    lifecycle.set('reconnecting', 'NATS connection lost');
    expect(lifecycle.state).toBe('draining');
    lifecycle.end('drained', null);
    lifecycle.set('serving', 'too late');
    expect(states).toEqual(['serving', 'draining', 'stopped']);
  });

  it('an end nobody asked for stops it from any state but stopped and rejects closed', async () => {
    for (const from of ['starting', 'serving', 'reconnecting', 'draining'] as const) {
      expect(WORKER_TRANSITIONS[from]).toContain('stopped');
    }
    const { lifecycle, states } = recorded();
    const error = new WorkerClosedError('the NATS connection closed');
    lifecycle.end(error.message, error);
    expect(states).toEqual(['stopped']);
    await expect(lifecycle.closed).rejects.toBe(error);
    expect(WORKER_TRANSITIONS.stopped).toEqual([]);
  });
});
