import type { TimerEntry, TimerWheel } from '../util/timer-wheel.js';

/** The slow-consumer options of a socket mount (README: Socket options). */
export interface SlowConsumerLimits {
  readonly maxBufferedBytes: number;
  readonly slowConsumerGraceMs: number;
  readonly maxBufferedBytesHard: number;
}

/** A connection whose backlog the watch judges. */
export interface Backlogged {
  /** Bytes written towards the client and not yet taken (by the kernel, or by a poll). */
  readonly bufferedAmount: number;
  /** The client is a slow consumer: drop it. */
  slowConsumer(why: 'grace' | 'hard'): void;
}

/** A WebSocket frame header is at most 10 bytes from the server; counted so a reader is not short-changed. */
const FRAME_OVERHEAD = 10;

/**
 * Judges a reader by what it fails to take over time, not by one write: a backlog over
 * `maxBufferedBytes` arms a deadline `slowConsumerGraceMs` away; at the deadline the client is
 * dropped only if it has not taken even the bytes that were pending when the deadline was armed
 * (more pending than was written since). A reader that took them but got more meanwhile is
 * judged again over a new period. A backlog over `maxBufferedBytesHard` drops the client at once,
 * which bounds the memory one socket can hold. Created on the first backlog (most sockets never
 * have one); the deadline runs on the shared timer wheel (up to one tick late).
 */
export class BacklogWatch implements TimerEntry {
  timerSlot = -1;
  private armed = false;
  /** Bytes written since the deadline was armed (the backlog then had to go first). */
  private writtenSinceArm = 0;

  constructor(
    private readonly wheel: TimerWheel,
    private readonly limits: SlowConsumerLimits,
    private readonly connection: Backlogged,
  ) {}

  /** Counts a write of `bytes` (only while a deadline is armed). */
  wrote(bytes: number): void {
    if (this.armed) this.writtenSinceArm += bytes + FRAME_OVERHEAD;
  }

  /**
   * The backlog is over maxBufferedBytes after a write (and after flushing what one turn
   * corked). Returns true when the client was dropped (over maxBufferedBytesHard).
   */
  over(buffered: number): boolean {
    if (buffered > this.limits.maxBufferedBytesHard) {
      this.stop();
      this.connection.slowConsumer('hard');
      return true;
    }
    if (!this.armed) this.arm();
    return false;
  }

  onTimer(): void {
    this.armed = false;
    const buffered = this.connection.bufferedAmount;
    if (buffered <= this.limits.maxBufferedBytes) return;
    if (buffered > this.writtenSinceArm) {
      this.connection.slowConsumer('grace');
      return;
    }
    this.arm();
  }

  /** The connection ended: forget the deadline. */
  stop(): void {
    this.armed = false;
    this.wheel.cancel(this);
  }

  private arm(): void {
    this.armed = true;
    this.writtenSinceArm = 0;
    this.wheel.schedule(this, this.wheel.clock() + this.limits.slowConsumerGraceMs);
  }
}
