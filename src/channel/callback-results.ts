/** What a channel handler's callbacks return, told apart; and stop reasons as the log shows them. */
import type { Reply, Stop, StopReason } from './types.js';
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

export function isReply(value: unknown): value is Reply {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { status?: unknown }).status === 'string'
  );
}

export function isAbortError(err: unknown): boolean {
  return (
    err !== null && typeof err === 'object' && (err as { name?: unknown }).name === 'AbortError'
  );
}

export function isStop(value: unknown): value is Stop {
  return value !== null && typeof value === 'object' && 'stop' in value;
}

/** A stop reason for the log: strings as they are, errors as `Name: message`, others as JSON. */
export function describeReason(reason: StopReason): string {
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return String(reason);
  try {
    return JSON.stringify(reason);
  } catch {
    return Object.prototype.toString.call(reason);
  }
}
