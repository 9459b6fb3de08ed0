import { FrameDecodeError, FrameEncodeError, isRef } from './message.js';

/** JSON.parse that reports failures as FrameDecodeError with a short, safe message. */
export function parseFrameJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FrameDecodeError(`frame is not valid JSON: ${(err as Error).message}`);
  }
}

/** JSON.stringify that reports unencodable values (cycles, BigInt) as FrameEncodeError. */
export function stringifyFrame(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new FrameEncodeError(`payload cannot be encoded as JSON: ${(err as Error).message}`);
  }
}

/** Field checks shared by the V1 and V2 decoders; the error names the offending field. */
export function checkFields(joinRef: unknown, ref: unknown, topic: unknown, event: unknown): void {
  if (typeof topic !== 'string') throw new FrameDecodeError('frame topic must be a string');
  if (typeof event !== 'string') throw new FrameDecodeError('frame event must be a string');
  if (!isRef(ref)) throw new FrameDecodeError('frame ref must be a string, a number or null');
  if (!isRef(joinRef))
    throw new FrameDecodeError('frame join_ref must be a string, a number or null');
}
