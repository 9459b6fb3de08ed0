import { GatewayError } from '../errors.js';
/**
 * Phoenix channel messages as the gateway sees them, independent of the serializer that carried
 * them. See protocol/phoenix.md §Framing.
 */

/** A join_ref or ref: echoed back exactly as the client sent it (strings from the JS client). */
export type Ref = string | number | null;

/** Binary payloads travel as bytes; everything else is a parsed JSON value. */
export type BinaryPayload = Uint8Array;

/** One decoded client frame. `payload` is a JSON value, or a Uint8Array for a V2 binary push. */
export interface InboundMessage {
  readonly joinRef: Ref;
  readonly ref: Ref;
  readonly topic: string;
  readonly event: string;
  readonly payload: unknown;
}

/** A client frame that cannot be decoded. The transport closes the connection (WebSocket 1011). */
export class FrameDecodeError extends GatewayError {
  override readonly name = 'FrameDecodeError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_FRAME_DECODE', message, options);
  }
}

/** A server frame that cannot be encoded (e.g. a binary field over 255 bytes). */
export class FrameEncodeError extends GatewayError {
  override readonly name = 'FrameEncodeError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_FRAME_ENCODE', message, options);
  }
}

export function isBinaryPayload(payload: unknown): payload is BinaryPayload {
  return payload instanceof Uint8Array;
}

export function isRef(value: unknown): value is Ref {
  return value === null || typeof value === 'string' || typeof value === 'number';
}

/** Reserved events and topics of the Phoenix protocol. */
export const PHX = {
  join: 'phx_join',
  leave: 'phx_leave',
  reply: 'phx_reply',
  close: 'phx_close',
  error: 'phx_error',
  heartbeat: 'heartbeat',
  heartbeatTopic: 'phoenix',
} as const;
