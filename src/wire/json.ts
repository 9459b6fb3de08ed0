import { randomBytes } from 'node:crypto';
import { FrameDecodeError, FrameEncodeError, isRef } from './message.js';
import {
  beginRawJsonSplice,
  endRawJsonSplice,
  type RawJson,
  type RawJsonSplice,
} from './raw-json.js';

/** JSON.parse that reports failures as FrameDecodeError with a short, safe message. */
export function parseFrameJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FrameDecodeError(`frame is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Where a RawJson sits in a frame while JSON.stringify runs: a string no client can make, since it
 * holds a secret of this process, so splicing can only ever replace what RawJson.toJSON put there.
 */
const PLACEHOLDER = `\u0000raw-json:${randomBytes(12).toString('base64url')}:`;

/** Placeholders by index, and each as it appears in JSON.stringify's output (made once each). */
const placeholders: string[] = [];
const quotedPlaceholders: string[] = [];
function placeholder(k: number): string {
  for (let next = placeholders.length; next <= k; next++) {
    placeholders.push(PLACEHOLDER + next);
    quotedPlaceholders.push(JSON.stringify(PLACEHOLDER + next));
  }
  return placeholders[k]!;
}

/** The RawJson values of the frame being encoded, in the order JSON.stringify met them. */
class FrameSplice implements RawJsonSplice {
  readonly raws: RawJson[] = [];
  add(raw: RawJson): string {
    return placeholder(this.raws.push(raw) - 1);
  }
}
const splice = new FrameSplice();

/**
 * JSON.stringify that reports unencodable values (cycles, BigInt) as FrameEncodeError, and puts
 * the text of each RawJson in the frame as it is (a worker's result travels without being parsed
 * and serialized again).
 */
export function stringifyFrame(value: unknown): string {
  let text: string;
  beginRawJsonSplice(splice);
  try {
    text = JSON.stringify(value);
  } catch (err) {
    splice.raws.length = 0;
    throw new FrameEncodeError(`payload cannot be encoded as JSON: ${(err as Error).message}`);
  } finally {
    endRawJsonSplice();
  }
  return splice.raws.length === 0 ? text : spliceRaws(text);
}

/** Replaces each placeholder (a JSON string in `text`) by its RawJson's text. */
function spliceRaws(text: string): string {
  const raws = splice.raws;
  let out = '';
  let from = 0;
  for (let k = 0; k < raws.length; k++) {
    const quoted = quotedPlaceholders[k]!;
    const at = text.indexOf(quoted, from);
    out += text.slice(from, at) + raws[k]!.text;
    from = at + quoted.length;
  }
  raws.length = 0;
  return out + text.slice(from);
}

/** Field checks shared by the V1 and V2 decoders; the error names the offending field. */
export function checkFields(joinRef: unknown, ref: unknown, topic: unknown, event: unknown): void {
  if (typeof topic !== 'string') throw new FrameDecodeError('frame topic must be a string');
  if (typeof event !== 'string') throw new FrameDecodeError('frame event must be a string');
  if (!isRef(ref)) throw new FrameDecodeError('frame ref must be a string, a number or null');
  if (!isRef(joinRef))
    throw new FrameDecodeError('frame join_ref must be a string, a number or null');
}
