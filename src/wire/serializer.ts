import type { Ref } from './message.js';
import type { InboundMessage } from './message.js';

/** What a serializer produces: a string is a WebSocket text frame, a Buffer a binary frame. */
export type EncodedFrame = string | Buffer;

/**
 * A Phoenix serializer. `encodeMessage` covers pushes, phx_close and phx_error; `encodeReply`
 * the phx_reply envelope; `encodeBroadcast` fastlane broadcasts (join_ref and ref null).
 * Encoders throw FrameEncodeError for payloads the format cannot carry; `decode` throws
 * FrameDecodeError for frames that are not valid in this format.
 */
export interface Serializer {
  /** The protocol version family: '1.0.0' (V1 objects) or '2.0.0' (V2 arrays + binary). */
  readonly vsn: ProtocolVersion;
  /** Whether the format has binary frames at all (V2 only). */
  readonly supportsBinary: boolean;
  decode(data: Buffer | string, isBinary: boolean): InboundMessage;
  encodeMessage(
    joinRef: Ref,
    ref: Ref,
    topic: string,
    event: string,
    payload: unknown,
  ): EncodedFrame;
  encodeReply(
    joinRef: Ref,
    ref: Ref,
    topic: string,
    status: string,
    response: unknown,
  ): EncodedFrame;
  encodeBroadcast(topic: string, event: string, payload: unknown): EncodedFrame;
}

/** The Phoenix serializer version a client negotiated (`vsn`). */
export type ProtocolVersion = '1.0.0' | '2.0.0';
