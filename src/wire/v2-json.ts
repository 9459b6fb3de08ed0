import {
  FrameDecodeError,
  isBinaryPayload,
  PHX,
  type InboundMessage,
  type Ref,
} from './message.js';
import { checkFields, parseFrameJson, stringifyFrame } from './json.js';
import type { EncodedFrame, Serializer } from './serializer.js';
import {
  decodeBinaryPush,
  encodeBinaryBroadcast,
  encodeBinaryPush,
  encodeBinaryReply,
} from './v2-binary.js';

/**
 * Phoenix V2 serializer (vsn 2.0.x): text frames are JSON arrays
 * `[join_ref, ref, topic, event, payload]`; binary payloads use V2 binary frames.
 */
export const v2Serializer: Serializer = {
  vsn: '2.0.0',
  supportsBinary: true,

  decode(data: Buffer | string, isBinary: boolean): InboundMessage {
    if (isBinary) return decodeBinaryPush(typeof data === 'string' ? Buffer.from(data) : data);
    const parsed = parseFrameJson(typeof data === 'string' ? data : data.toString('utf8'));
    if (!Array.isArray(parsed)) throw new FrameDecodeError('V2 frame must be a JSON array');
    if (parsed.length < 5)
      throw new FrameDecodeError(`V2 frame must have 5 elements, got ${parsed.length}`);
    const [joinRef, ref, topic, event, payload] = parsed as [
      unknown,
      unknown,
      unknown,
      unknown,
      unknown,
    ];
    checkFields(joinRef, ref, topic, event);
    return {
      joinRef: joinRef as Ref,
      ref: ref as Ref,
      topic: topic as string,
      event: event as string,
      payload,
    };
  },

  encodeMessage(
    joinRef: Ref,
    ref: Ref,
    topic: string,
    event: string,
    payload: unknown,
  ): EncodedFrame {
    if (isBinaryPayload(payload)) return encodeBinaryPush(joinRef, topic, event, payload);
    return stringifyFrame([joinRef, ref, topic, event, payload]);
  },

  encodeReply(
    joinRef: Ref,
    ref: Ref,
    topic: string,
    status: string,
    response: unknown,
  ): EncodedFrame {
    if (isBinaryPayload(response)) return encodeBinaryReply(joinRef, ref, topic, status, response);
    return stringifyFrame([joinRef, ref, topic, PHX.reply, { status, response }]);
  },

  encodeBroadcast(topic: string, event: string, payload: unknown): EncodedFrame {
    if (isBinaryPayload(payload)) return encodeBinaryBroadcast(topic, event, payload);
    return stringifyFrame([null, null, topic, event, payload]);
  },
};
