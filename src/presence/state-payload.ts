/**
 * Presence payloads (`presence_state`, each half of a `presence_diff`) built from client-chosen
 * keys without letting a key such as "__proto__" touch a prototype.
 */
import type { PresenceMeta, PresenceState } from './tracker.js';

/** Builds objects keyed by client-chosen strings without letting "__proto__" touch a prototype. */
export function keyed<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Defines `key` on `target` as plain data, whatever the key. */
export function setKey<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** Groups key/meta pairs into a `presence_state`-shaped payload (one diff half). */
export function group(items: readonly (readonly [string, PresenceMeta])[]): PresenceState {
  const state = keyed<{ metas: PresenceMeta[] }>();
  for (const [key, meta] of items) {
    const existing = state[key];
    if (existing) existing.metas.push(meta);
    else setKey(state, key, { metas: [meta] });
  }
  return state;
}
