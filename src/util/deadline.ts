/**
 * Races `work` against a timer of `ms` milliseconds: settles as `work` does, or, when the timer
 * fires first, with what `onTimeout` returns (its throw rejects). An abort of `signal` (optional)
 * ends the wait at once, as the timer would. The timer and the abort listener are removed either
 * way, so a finished race leaves nothing scheduled. `work` goes on after a timeout; its late
 * result or rejection is ignored here (a caller that must observe it keeps its own reference).
 * The one race-with-a-timeout of the code base: callers say what a timeout means, nothing else.
 */
export function withDeadline<T, U>(
  work: PromiseLike<T>,
  ms: number,
  onTimeout: () => U,
  signal?: AbortSignal,
): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  let expire: (() => void) | undefined;
  const deadline = new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => resolve();
    expire = done;
    timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  }).then(onTimeout);
  return Promise.race([work, deadline]).finally(() => {
    clearTimeout(timer);
    if (expire !== undefined) signal?.removeEventListener('abort', expire);
  });
}
