import type { PresenceChange } from './tracker.js';

/**
 * Reports an `onLocalChange` listener's error to `onChangeError` (default: a process warning); an
 * `onChangeError` that throws too only adds a warning.
 */
export function reportChangeError(
  onChangeError: ((err: unknown, change: PresenceChange) => void) | undefined,
  err: unknown,
  change: PresenceChange,
): void {
  const where = `${change.kind} ${change.topic}/${change.key}`;
  const handler = onChangeError;
  if (handler) {
    try {
      handler(err, change);
      return;
    } catch (handlerErr) {
      process.emitWarning(
        `presence onChangeError threw on ${where}: ${String(handlerErr)}`,
        'PresenceWarning',
      );
    }
  }
  process.emitWarning(
    `presence onLocalChange listener threw on ${where}: ${String(err)}`,
    'PresenceWarning',
  );
}
