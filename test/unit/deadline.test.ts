/** withDeadline: the one race-with-a-timeout; it leaves no timer behind whichever side wins. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { withDeadline } from '../../src/util/deadline.js';

describe('withDeadline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('settles as the work does, and clears its timer', async () => {
    vi.useFakeTimers();
    const onTimeout = vi.fn(() => 'late');
    await expect(withDeadline(Promise.resolve('value'), 1_000, onTimeout)).resolves.toBe('value');
    expect(vi.getTimerCount()).toBe(0);
    await expect(
      withDeadline(Promise.reject(new Error('failed')), 1_000, onTimeout),
    ).rejects.toThrow('failed');
    expect(vi.getTimerCount()).toBe(0);
    expect(onTimeout).not.toHaveBeenCalled();
  });

  it('at the deadline: what onTimeout returns, or its throw', async () => {
    vi.useFakeTimers();
    const never = new Promise<string>(() => undefined);
    const late = withDeadline(never, 50, () => 'timed out');
    await vi.advanceTimersByTimeAsync(50);
    await expect(late).resolves.toBe('timed out');
    const thrown = withDeadline(never, 50, () => {
      throw new RangeError('too slow');
    });
    const settled = expect(thrown).rejects.toThrow(RangeError);
    await vi.advanceTimersByTimeAsync(50);
    await settled;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an abort ends the wait as the deadline would, and the listener is removed', async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const never = new Promise<string>(() => undefined);
    const waiting = withDeadline(never, 10_000, () => 'cut', controller.signal);
    controller.abort();
    await expect(waiting).resolves.toBe('cut');
    expect(vi.getTimerCount()).toBe(0);
    await expect(withDeadline(never, 10_000, () => 'at once', controller.signal)).resolves.toBe(
      'at once',
    );
    expect(vi.getTimerCount()).toBe(0);
  });
});
