/**
 * Shorter JSON text is parsed and serialized again rather than spliced: below about this length
 * the splice costs more than it saves (measured: 100 B 1.55 µs parsed vs 1.71 µs spliced per
 * frame; 634 B 8.0 vs 5.4 µs; 69 KB 735 vs 438 µs).
 */
export const RAW_JSON_MIN_LENGTH = 256;

/**
 * JSON text that travels to the client as it came (a worker's result): the frame encoder splices
 * the text into the frame instead of parsing it into objects and serializing them again. The text
 * is checked once, when the RawJson is made (`RawJson.from`), so a frame never carries invalid JSON.
 */
export class RawJson {
  private constructor(readonly text: string) {}

  /** The text as a RawJson, or null when it is not one valid JSON value (RFC 8259). */
  static from(text: string): RawJson | null {
    return isJsonText(text) ? new RawJson(text) : null;
  }

  /** The value the text stands for (what JSON.parse gives). */
  value(): unknown {
    return JSON.parse(this.text);
  }

  /**
   * Inside `stringifyFrame` (json.ts) a placeholder the encoder replaces with the text; anywhere
   * else (a log line, a test) the parsed value, so a RawJson serializes as what it stands for.
   */
  toJSON(): unknown {
    return splicing === null ? this.value() : splicing.add(this);
  }
}

/** Collects the RawJson values met by one JSON.stringify call (see stringifyFrame). */
export interface RawJsonSplice {
  add(raw: RawJson): string;
}

let splicing: RawJsonSplice | null = null;

/**
 * From here until `endRawJsonSplice`, RawJson.toJSON answers `splice`'s placeholders. Not
 * re-entrant: one JSON.stringify between the two calls (stringifyFrame's).
 */
export function beginRawJsonSplice(splice: RawJsonSplice): void {
  splicing = splice;
}

export function endRawJsonSplice(): void {
  splicing = null;
}

// Character codes the scanner compares against.
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

/** Containers open at the current point: true for an object, false for an array. */
type Stack = boolean[];

function isSpace(c: number): boolean {
  return c === SPACE || c === LF || c === CR || c === TAB;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** A run of characters that need no look inside a string (regex code skips them fastest). */
// eslint-disable-next-line no-control-regex -- the control characters JSON strings may not hold raw
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;

/** The index after the string starting at `i` (a quote), or -1 when it is not a valid string. */
function scanString(text: string, i: number): number {
  const end = text.length;
  i++;
  while (i < end) {
    PLAIN_RUN.lastIndex = i;
    PLAIN_RUN.test(text); // always matches (possibly nothing); `test` allocates no match array
    i = PLAIN_RUN.lastIndex;
    if (i >= end) break;
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    if (c < SPACE) return -1;
    if (c === BACKSLASH) {
      const e = text.charCodeAt(i + 1);
      if (e === 0x75 /* u */) {
        if (i + 5 >= end) return -1;
        for (let k = i + 2; k < i + 6; k++) if (!isHex(text.charCodeAt(k))) return -1;
        i += 6;
        continue;
      }
      // " \ / b f n r t
      if (
        e !== QUOTE &&
        e !== BACKSLASH &&
        e !== 0x2f &&
        e !== 0x62 &&
        e !== 0x66 &&
        e !== 0x6e &&
        e !== 0x72 &&
        e !== 0x74
      )
        return -1;
      i += 2;
      continue;
    }
    i++;
  }
  return -1;
}

/** The index after the number starting at `i`, or -1 when it is not a valid number. */
function scanNumber(text: string, i: number): number {
  if (text.charCodeAt(i) === MINUS) i++;
  const first = text.charCodeAt(i);
  if (first === ZERO) i++;
  else if (first > ZERO && first <= NINE) while (isDigit(text.charCodeAt(i))) i++;
  else return -1;
  if (text.charCodeAt(i) === DOT) {
    i++;
    if (!isDigit(text.charCodeAt(i))) return -1;
    while (isDigit(text.charCodeAt(i))) i++;
  }
  const e = text.charCodeAt(i);
  if (e === LOWER_E || e === UPPER_E) {
    i++;
    const sign = text.charCodeAt(i);
    if (sign === PLUS || sign === MINUS) i++;
    if (!isDigit(text.charCodeAt(i))) return -1;
    while (isDigit(text.charCodeAt(i))) i++;
  }
  return i;
}

/** The index after the literal `word` at `i`, or -1. */
function scanWord(text: string, i: number, word: string): number {
  return text.startsWith(word, i) ? i + word.length : -1;
}

/** The index after the scalar or opening bracket at `i`, or -1; pushes opened containers. */
function scanValueStart(text: string, i: number, stack: Stack): number {
  switch (text.charCodeAt(i)) {
    case QUOTE:
      return scanString(text, i);
    case OPEN_BRACE:
      stack.push(true);
      return i + 1;
    case OPEN_BRACKET:
      stack.push(false);
      return i + 1;
    case 0x74 /* t */:
      return scanWord(text, i, 'true');
    case 0x66 /* f */:
      return scanWord(text, i, 'false');
    case 0x6e /* n */:
      return scanWord(text, i, 'null');
    default:
      return scanNumber(text, i);
  }
}

/**
 * Whether `text` is exactly one JSON value with optional whitespace around it: the grammar
 * JSON.parse accepts. One pass, no recursion (nesting depth costs a stack entry, not a call frame)
 * and nothing allocated besides that stack.
 */
export function isJsonText(text: string): boolean {
  const end = text.length;
  const stack: Stack = [];
  let i = 0;
  while (i < end && isSpace(text.charCodeAt(i))) i++;
  i = scanValueStart(text, i, stack);
  // After a value (or an opening bracket): close containers, or go on to the next member.
  // `opened` says the last step opened a container, so it may close at once or needs a first value.
  let opened = stack.length > 0;
  while (i !== -1 && stack.length > 0) {
    while (i < end && isSpace(text.charCodeAt(i))) i++;
    const inObject = stack[stack.length - 1]!;
    const c = text.charCodeAt(i);
    if (c === (inObject ? CLOSE_BRACE : CLOSE_BRACKET)) {
      stack.pop();
      i++;
      opened = false;
      continue;
    }
    if (!opened) {
      if (c !== COMMA) return false;
      i++;
      while (i < end && isSpace(text.charCodeAt(i))) i++;
    }
    if (inObject) {
      if (text.charCodeAt(i) !== QUOTE) return false;
      i = scanString(text, i);
      if (i === -1) return false;
      while (i < end && isSpace(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) !== COLON) return false;
      i++;
      while (i < end && isSpace(text.charCodeAt(i))) i++;
    }
    const depth = stack.length;
    i = scanValueStart(text, i, stack);
    opened = stack.length > depth;
  }
  if (i === -1) return false;
  while (i < end && isSpace(text.charCodeAt(i))) i++;
  return i === end;
}
