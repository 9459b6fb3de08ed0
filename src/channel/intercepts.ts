import type { ChannelHandler } from './types.js';

const interceptCache = new WeakMap<object, ReadonlySet<string>>();

/** The events a handler intercepts (`intercept`), as a set built once per handler; null for none. */
export function interceptsOf(handler: ChannelHandler<never>): ReadonlySet<string> | null {
  if (!handler.intercept || handler.intercept.length === 0) return null;
  let set = interceptCache.get(handler);
  if (!set) {
    set = new Set(handler.intercept);
    interceptCache.set(handler, set);
  }
  return set;
}
