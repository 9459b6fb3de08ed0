import {
  FrameDecodeError,
  FrameEncodeError,
  isBinaryPayload,
  PHX,
  type InboundMessage,
  type Ref,
} from './message.js';
import { checkFields, parseFrameJson, stringifyFrame } from './json.js';
import type { Serializer } from './serializer.js';

const REQUIRED_KEYS = ['topic', 'event', 'payload', 'ref'] as const;

function noBinary(payload: unknown): void {
  if (isBinaryPayload(payload))
    throw new FrameEncodeError('the V1 serializer cannot carry binary payloads');
}

/**
 * Phoenix V1 serializer (vsn 1.0.x, or no vsn): JSON objects `{topic, event, payload, ref}`.
 * Server frames never carry `join_ref`; phx_close/phx_error carry the stored join_ref as `ref`.
 */
export const v1Serializer: Serializer = {
  vsn: '1.0.0',
  supportsBinary: false,

  decode(data: Buffer | string, isBinary: boolean): InboundMessage {
    if (isBinary) throw new FrameDecodeError('binary frames need the V2 serializer (vsn=2.0.0)');
    const parsed = parseFrameJson(typeof data === 'string' ? data : data.toString('utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new FrameDecodeError('V1 frame must be a JSON object');
    }
    const frame = parsed as Record<string, unknown>;
    for (const key of REQUIRED_KEYS) {
      if (!(key in frame)) throw new FrameDecodeError(`V1 frame is missing "${key}"`);
    }
    const joinRef = 'join_ref' in frame ? frame.join_ref : null;
    checkFields(joinRef, frame.ref, frame.topic, frame.event);
    return {
      joinRef: joinRef as Ref,
      ref: frame.ref as Ref,
      topic: frame.topic as string,
      event: frame.event as string,
      payload: frame.payload,
    };
  },

  encodeMessage(_joinRef: Ref, ref: Ref, topic: string, event: string, payload: unknown): string {
    noBinary(payload);
    return stringifyFrame({ topic, event, payload, ref });
  },

  encodeReply(_joinRef: Ref, ref: Ref, topic: string, status: string, response: unknown): string {
    noBinary(response);
    return stringifyFrame({ topic, event: PHX.reply, payload: { status, response }, ref });
  },

  encodeBroadcast(topic: string, event: string, payload: unknown): string {
    noBinary(payload);
    return stringifyFrame({ topic, event, payload, ref: null });
  },
};
