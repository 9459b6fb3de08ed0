import type { TimerEntry, TimerWheel } from '../util/timer-wheel.js';

/** What a token expiry closes. */
export interface ExpiringSocket {
  /** Closes the socket because its token expired. */
  tokenExpired(): void;
}

/**
 * Closes a socket when the token it authenticated with expires (`ConnectAccept.expiresAt`). The
 * shared timer wheel fires within one tick of the deadline, so a socket owns no Node timer.
 * `extend` moves the deadline (a refreshed token).
 */
export class TokenExpiry implements TimerEntry {
  timerSlot = -1;

  constructor(
    private readonly socket: ExpiringSocket,
    private readonly wheel: TimerWheel,
  ) {}

  /** (Re)arms for `expiresAt` (epoch ms): the wheel runs on a monotonic clock. */
  arm(expiresAt: number): void {
    this.wheel.schedule(this, this.wheel.clock() + Math.max(0, expiresAt - Date.now()));
  }

  cancel(): void {
    this.wheel.cancel(this);
  }

  onTimer(): void {
    this.socket.tokenExpired();
  }
}
