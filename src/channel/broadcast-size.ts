import { GatewayError } from '../errors.js';

/**
 * A channel's broadcast whose payload is over the socket's `maxBroadcastBytes`: thrown by
 * `channel.broadcast()` / `broadcastFrom()`; nothing was sent to anyone. Uncaught in a handler,
 * it crashes that channel like any handler error (the sender gets `phx_error`).
 */
export class ChannelBroadcastTooLargeError extends GatewayError {
  override readonly name = 'ChannelBroadcastTooLargeError';
  constructor(
    message?: string,
    /** The channel's topic, the event and the limit it was over. */
    readonly topic = '',
    readonly event = '',
    readonly limit = 0,
  ) {
    super('ERR_CHANNEL_BROADCAST_TOO_LARGE', message);
  }
}

/** The error for a refused broadcast, with a message that says what and why. */
export function broadcastTooLarge(
  topic: string,
  event: string,
  limit: number,
): ChannelBroadcastTooLargeError {
  return new ChannelBroadcastTooLargeError(
    `broadcast ${JSON.stringify(event)} on ${JSON.stringify(topic)} is over maxBroadcastBytes (${limit} bytes); nothing was sent`,
    topic,
    event,
    limit,
  );
}

/** Nesting deeper than this is not measured (the encoder judges such payloads). */
const MAX_DEPTH = 1_000;

/**
 * True when `payload` is larger than `limit` bytes: raw bytes for a binary payload, else its JSON
 * size (UTF-8 bytes of strings and keys plus JSON punctuation; escapes are not counted, so this
 * never overestimates). Stops as soon as the limit is passed and allocates nothing for strings,
 * so a small payload costs a short walk and a huge one no more than `limit` bytes of walking.
 */
export function payloadOver(payload: unknown, limit: number): boolean {
  if (payload instanceof Uint8Array) return payload.byteLength > limit;
  return measure(payload, limit, 0) > limit;
}

/** True for values JSON leaves out of an object (and writes as null in an array). */
function omitted(value: unknown): boolean {
  const type = typeof value;
  return type === 'undefined' || type === 'function' || type === 'symbol';
}

/** The JSON size of `value`, or any number over `budget` once it is known to be over it. */
function measure(value: unknown, budget: number, depth: number): number {
  switch (typeof value) {
    case 'string':
      return Buffer.byteLength(value) + 2;
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4;
    case 'boolean':
      return value ? 4 : 5;
    case 'object':
      break;
    default:
      return 0;
  }
  if (value === null) return 4;
  if (depth > MAX_DEPTH) return 0;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (Array.isArray(value)) {
    // "[" + items joined by "," + "]"; a left-out item is written as null.
    let size = value.length > 0 ? value.length + 1 : 2;
    for (let i = 0; i < value.length && size <= budget; i++) {
      const item: unknown = value[i];
      size += omitted(item) ? 4 : measure(item, budget - size, depth + 1);
    }
    return size;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    return measure((toJSON as () => unknown).call(value), budget, depth + 1);
  }
  // "{" + `"key":value` entries joined by "," + "}".
  let size = 1;
  let entries = 0;
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    const item = (value as Record<string, unknown>)[key];
    if (omitted(item)) continue;
    entries++;
    size += Buffer.byteLength(key) + 4; // quotes, colon, and the comma or closing brace
    size += measure(item, budget - size, depth + 1);
    if (size > budget) return size;
  }
  return entries === 0 ? 2 : size;
}
