import { FrameDecodeError, FrameEncodeError, type InboundMessage, type Ref } from './message.js';

/**
 * Phoenix V2 binary frames (protocol/phoenix.md §Binary frames). Every length is one unsigned
 * byte counting UTF-8 bytes, so each string field is limited to 255 bytes.
 */
export const BINARY_KIND = { push: 0, reply: 1, broadcast: 2 } as const;
export const MAX_BINARY_FIELD_BYTES = 255;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readField(frame: Uint8Array, start: number, length: number, name: string): string {
  try {
    return utf8.decode(frame.subarray(start, start + length));
  } catch {
    throw new FrameDecodeError(`binary frame ${name} is not valid UTF-8`);
  }
}

/** Decodes a client → server binary frame. Only kind 0 (push) is legal from a client. */
export function decodeBinaryPush(frame: Buffer): InboundMessage {
  if (frame.length < 5)
    throw new FrameDecodeError(`binary frame too short (${frame.length} bytes)`);
  const kind = frame[0]!;
  if (kind !== BINARY_KIND.push)
    throw new FrameDecodeError(`binary frame kind ${kind} is not allowed from a client`);
  const joinRefLen = frame[1]!;
  const refLen = frame[2]!;
  const topicLen = frame[3]!;
  const eventLen = frame[4]!;
  const headerEnd = 5 + joinRefLen + refLen + topicLen + eventLen;
  if (headerEnd > frame.length) {
    throw new FrameDecodeError(
      `binary frame header declares ${headerEnd} bytes but the frame has ${frame.length}`,
    );
  }
  let offset = 5;
  const joinRef = readField(frame, offset, joinRefLen, 'join_ref');
  offset += joinRefLen;
  const ref = readField(frame, offset, refLen, 'ref');
  offset += refLen;
  const topic = readField(frame, offset, topicLen, 'topic');
  offset += topicLen;
  const event = readField(frame, offset, eventLen, 'event');
  return { joinRef, ref, topic, event, payload: frame.subarray(headerEnd) };
}

function refText(ref: Ref): string {
  return ref === null ? '' : String(ref);
}

function fieldLength(value: string, name: string): number {
  const length = Buffer.byteLength(value, 'utf8');
  if (length > MAX_BINARY_FIELD_BYTES) {
    throw new FrameEncodeError(
      `unable to encode ${name} in a binary frame: ${length} bytes exceeds ${MAX_BINARY_FIELD_BYTES}`,
    );
  }
  return length;
}

function assemble(
  kind: number,
  fields: readonly string[],
  names: readonly string[],
  payload: Uint8Array,
): Buffer {
  const lengths = fields.map((field, i) => fieldLength(field, names[i]!));
  const headerLength = 1 + fields.length;
  let total = headerLength + payload.length;
  for (const length of lengths) total += length;
  const out = Buffer.allocUnsafe(total);
  out[0] = kind;
  lengths.forEach((length, i) => {
    out[1 + i] = length;
  });
  let offset = headerLength;
  fields.forEach((field, i) => {
    offset += out.write(field, offset, lengths[i]!, 'utf8');
  });
  out.set(payload, offset);
  return out;
}

/** Server → client push (kind 0): join_ref, topic, event; no ref field. */
export function encodeBinaryPush(
  joinRef: Ref,
  topic: string,
  event: string,
  payload: Uint8Array,
): Buffer {
  return assemble(
    BINARY_KIND.push,
    [refText(joinRef), topic, event],
    ['join_ref', 'topic', 'event'],
    payload,
  );
}

/** Server → client reply (kind 1): join_ref, ref, topic, status; the response bytes follow. */
export function encodeBinaryReply(
  joinRef: Ref,
  ref: Ref,
  topic: string,
  status: string,
  response: Uint8Array,
): Buffer {
  return assemble(
    BINARY_KIND.reply,
    [refText(joinRef), refText(ref), topic, status],
    ['join_ref', 'ref', 'topic', 'status'],
    response,
  );
}

/** Server → client broadcast (kind 2): topic, event. */
export function encodeBinaryBroadcast(topic: string, event: string, payload: Uint8Array): Buffer {
  return assemble(BINARY_KIND.broadcast, [topic, event], ['topic', 'event'], payload);
}
