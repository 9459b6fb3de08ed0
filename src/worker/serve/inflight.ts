import { CancelledError } from '../../errors.js';
import { withDeadline } from '../../util/deadline.js';
import type { CallSignal } from '../runtime.js';

/**
 * The calls and streams a served service runs right now, and whether it takes more: at most
 * `max` at once, none once it drains or ended. A drain waits here for the count to reach zero.
 */
export class InFlight {
  private count = 0;
  private refusing = false;
  private idle: (() => void) | null = null;
  /** The running calls' signals, so a drain past its deadline (or an end) can abort them. */
  readonly calls = new Set<CallSignal>();

  constructor(private readonly max: number) {}

  /** Calls and streams running now. */
  get size(): number {
    return this.count;
  }

  /** Why a new call or stream is refused (503), or null when it may run. */
  refusal(): string | null {
    if (this.refusing) return 'service is draining';
    if (this.count >= this.max)
      return `overloaded: ${this.count} requests in flight (maxConcurrent ${this.max})`;
    return null;
  }

  /** A call or stream started. */
  begin(): void {
    this.count++;
  }

  /** A call or stream ended. */
  end(): void {
    this.count--;
    if (this.refusing && this.count === 0) this.idle?.();
  }

  /** From now on every new call or stream is refused. */
  refuseNew(): void {
    this.refusing = true;
  }

  /** Resolves when nothing runs any more, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    if (this.count === 0) return;
    await withDeadline(
      new Promise<void>((resolve) => (this.idle = resolve)),
      timeoutMs,
      () => undefined,
    );
  }

  /** Aborts every running call (`ctx.signal`) with `reason`. */
  abortCalls(reason: string): void {
    for (const call of this.calls) call.cancel(new CancelledError(reason));
  }
}
