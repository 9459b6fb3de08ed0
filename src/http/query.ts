import { GatewayError } from '../errors.js';
/**
 * Query-string decoding with Plug's rules, so connect params look exactly as they do to a
 * Phoenix `connect/3`: `a[b]=1` → `{a: {b: "1"}}`, `arr[]=x&arr[]=y` → `{arr: ["x","y"]}`,
 * `list[0]=x` → `{list: {"0": "x"}}` (a map, not a list), `+` is a space, empty segments are
 * skipped, `=v` is the key "" and the last assignment wins when keys conflict.
 */

export type ParamValue = string | ParamValue[] | Params;
/** Decoded query params, as Plug decodes them (nested maps and lists). */
export interface Params {
  [key: string]: ParamValue;
}

export class QueryDecodeError extends GatewayError {
  override readonly name = 'QueryDecodeError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_QUERY_DECODE', message, options);
  }
}

function decodeComponent(raw: string): string {
  const text = raw.includes('+') ? raw.replace(/\+/g, ' ') : raw;
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    throw new QueryDecodeError(`invalid percent-encoding in query: ${raw.slice(0, 64)}`);
  }
}

/** Sets an own property even for "__proto__", so client keys never touch prototypes. */
function setOwn(target: Params, key: string, value: ParamValue): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    target[key] = value;
  }
}

function isParams(value: ParamValue | undefined): value is Params {
  return value !== undefined && typeof value === 'object' && !Array.isArray(value);
}

/** Splits `a[b][]` into ["a", "b", ""]; a key that is not well-formed bracket syntax stays whole. */
function splitKey(key: string): string[] {
  const open = key.indexOf('[');
  if (open <= 0 || !key.endsWith(']')) return [key];
  const parts = [key.slice(0, open)];
  let rest = key.slice(open);
  while (rest.length > 0) {
    if (rest[0] !== '[') return [key];
    const close = rest.indexOf(']');
    if (close < 0) return [key];
    parts.push(rest.slice(1, close));
    rest = rest.slice(close + 1);
  }
  return parts;
}

function assign(target: Params, path: readonly string[], index: number, value: string): void {
  const key = path[index]!;
  if (index === path.length - 1) {
    setOwn(target, key, value);
    return;
  }
  const existing = Object.prototype.hasOwnProperty.call(target, key) ? target[key] : undefined;
  if (path[index + 1] === '') {
    const list: ParamValue[] = Array.isArray(existing) ? existing : [];
    if (list !== existing) setOwn(target, key, list);
    appendToList(list, path, index + 1, value);
    return;
  }
  const child: Params = isParams(existing) ? existing : {};
  if (child !== existing) setOwn(target, key, child);
  assign(child, path, index + 1, value);
}

/**
 * `path[index]` is an empty segment (`[]`) naming `list`. `key[]` appends the value, `key[][]`
 * appends a nested list (Plug: `x[][][]=1` → `[[["1"]]]`), and `key[][field]` fills the last map
 * until it already has that field, then starts a new one.
 */
function appendToList(
  list: ParamValue[],
  path: readonly string[],
  index: number,
  value: string,
): void {
  if (index === path.length - 1) {
    list.push(value);
    return;
  }
  const next = path[index + 1]!;
  if (next === '') {
    const inner: ParamValue[] = [];
    list.push(inner);
    appendToList(inner, path, index + 1, value);
    return;
  }
  const last = list[list.length - 1];
  let entry: Params;
  if (isParams(last) && !Object.prototype.hasOwnProperty.call(last, next)) {
    entry = last;
  } else {
    entry = {};
    list.push(entry);
  }
  assign(entry, path, index + 1, value);
}

export function decodeQuery(query: string): Params {
  const params: Params = {};
  if (query.startsWith('?')) query = query.slice(1);
  if (query === '') return params;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decodeComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decodeComponent(pair.slice(eq + 1));
    assign(params, splitKey(key), 0, value);
  }
  return params;
}
