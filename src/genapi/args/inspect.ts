/**
 * Elixir's `inspect/1` for JSON values, as PhoenixGenApi interpolates them into the error messages
 * clients receive (`got "abc"`, `extra: ["city"]`, `%{"a" => 1}`, `nil`).
 *
 * Follows Elixir's default `Inspect.Opts` (Elixir ≥ 1.19 rules):
 * - `limit: 50`: one budget shared by the whole value; every list item / map pair (at any depth)
 *   takes one unit, and a container with budget left at 0 prints `...` for the rest.
 * - `printable_limit: 4096`: a string longer than 4096 characters prints its first 4096 followed by
 *   `" <> ...`.
 * - A string with a non-printable character (e.g. `\u0000`) prints as its UTF-8 bytes,
 *   `<<104, 0>>`, like an Elixir binary that is not valid printable UTF-8.
 * - Strings escape `"`, `\`, `#{` and `\a \b \d \e \f \n \r \t \v`; invisible or bidirectional
 *   characters (NBSP, zero-width, U+202A..U+202E…) print as `\uXXXX`.
 * - Integers print as digits; other numbers use the shortest round-trip digits with Erlang's
 *   `float_to_binary(F, [short])` layout (`1.5`, `0.001`, `1.0e-4`, `1.2e-7`).
 * - Maps print as `%{"a" => 1}` in the object's key order (Elixir would sort small maps; JSON
 *   objects have no order to preserve, so ours is the one the client sent).
 * Deliberately not reproduced: charlist detection (Elixir shows `[104, 105]` as `~c"hi"`; a JSON
 * array of numbers is never a charlist for the client), and the float/integer distinction JSON
 * loses (`1.0` arrives as the number 1 and prints as `1`).
 */

const LIMIT = 50;
const PRINTABLE_LIMIT = 4096;

interface Budget {
  left: number;
}

export function inspect(value: unknown): string {
  return render(value, { left: LIMIT });
}

function render(value: unknown, budget: Budget): string {
  if (value === null || value === undefined) return 'nil';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return inspectNumber(value);
    case 'bigint':
      return value.toString();
    case 'string':
      return inspectString(value, budget);
    case 'symbol':
      return `:${value.description ?? ''}`;
    case 'function':
      return `#Function<${value.name}>`;
    default:
      break;
  }
  if (Array.isArray(value)) {
    return container('[', value, ']', budget, (item) => render(item, budget));
  }
  const entries = Object.entries(value as Record<string, unknown>);
  return container('%{', entries, '}', budget, ([key, val]) => {
    const keyDoc = render(key, budget);
    return `${keyDoc} => ${render(val, budget)}`;
  });
}

/** Elixir's container_doc: items separated by ", ", `...` once the shared budget is spent. */
function container<T>(
  open: string,
  items: readonly T[],
  close: string,
  budget: Budget,
  each: (item: T) => string,
): string {
  if (items.length === 0) return open + close;
  const docs: string[] = [];
  for (const item of items) {
    if (budget.left <= 0) {
      docs.push('...');
      break;
    }
    budget.left -= 1;
    docs.push(each(item));
  }
  return open + docs.join(', ') + close;
}

// ── numbers ──────────────────────────────────────────────────────────────────────────────────

function inspectNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
  if (Number.isInteger(n)) {
    // String(1e21) is "1e+21"; Elixir integers always print every digit.
    return Math.abs(n) < 1e21 ? String(n === 0 ? 0 : n) : BigInt(n).toString();
  }
  return formatFloat(n);
}

/**
 * Erlang's `float_to_binary(F, [short])` for a non-integral float: the shortest digits that read
 * back to the same double, in decimal notation unless scientific notation is shorter.
 */
function formatFloat(n: number): string {
  const sign = n < 0 ? '-' : '';
  // toExponential() without an argument yields the shortest round-trip digits.
  const [mantissa = '0', expText = '0'] = Math.abs(n).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  const len = digits.length;
  const place = exp - len + 1; // value = digits × 10^place; place < 0 for a non-integer
  const expDigits = String(exp);
  const expCost = expDigits.length + 2;
  let body: string;
  if (exp >= 0) {
    body = `${digits.slice(0, len + place)}.${digits.slice(len + place)}`;
  } else if (2 - place - len <= expCost) {
    body = `0.${'0'.repeat(-place - len)}${digits}`;
  } else {
    body = len === 1 ? `${digits}.0e${expDigits}` : `${digits[0]}.${digits.slice(1)}e${expDigits}`;
  }
  return sign + body;
}

// ── strings ──────────────────────────────────────────────────────────────────────────────────

/** Characters Elixir's escape shows as `\uXXXX` even though they are printable. */
function isConfusing(cp: number): boolean {
  return (
    cp === 0xfeff ||
    (cp >= 0x2061 && cp <= 0x2064) ||
    cp === 0x061c ||
    cp === 0x200e ||
    cp === 0x200f ||
    (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    (cp >= 0xfff9 && cp <= 0xfffc) ||
    cp === 0x200c ||
    cp === 0x200d ||
    cp === 0x034f ||
    cp === 0x00a0 ||
    cp === 0x200b ||
    cp === 0x2060 ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x205f
  );
}

const ESCAPES: ReadonlyMap<number, string> = new Map([
  [0x07, '\\a'],
  [0x08, '\\b'],
  [0x7f, '\\d'],
  [0x1b, '\\e'],
  [0x0c, '\\f'],
  [0x0a, '\\n'],
  [0x0d, '\\r'],
  [0x09, '\\t'],
  [0x0b, '\\v'],
  [0x5c, '\\\\'],
]);

/** String.printable?/2: control characters other than the nine escapable ones are not. */
function isPrintableCodepoint(cp: number): boolean {
  return (
    (cp >= 0x20 && cp <= 0x7e) ||
    ESCAPES.has(cp) ||
    (cp >= 0xa0 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function hex(cp: number, width: number): string {
  return cp.toString(16).toUpperCase().padStart(width, '0');
}

function inspectString(s: string, budget: Budget): string {
  const chars = Array.from(s); // code points; a lone surrogate stays one (non-printable) unit
  const checked = Math.min(chars.length, PRINTABLE_LIMIT);
  for (let i = 0; i < checked; i++) {
    if (!isPrintableCodepoint(chars[i]!.codePointAt(0)!)) return inspectBytes(s, budget);
  }
  let out = '"';
  let count = PRINTABLE_LIMIT;
  let i = 0;
  while (i < chars.length) {
    if (count === 0) return `${out}" <> ...`;
    const ch = chars[i]!;
    const cp = ch.codePointAt(0)!;
    if (ch === '"') {
      out += '\\"';
    } else if (ch === '#' && chars[i + 1] === '{') {
      out += '\\#{';
      i += 1;
    } else if (ESCAPES.has(cp)) {
      out += ESCAPES.get(cp)!;
    } else if (cp === 0) {
      out += '\\0';
    } else if (isConfusing(cp)) {
      out += `\\u${hex(cp, 4)}`;
    } else if (isPrintableCodepoint(cp)) {
      out += ch;
    } else if (cp < 0x80) {
      out += `\\x${hex(cp, 2)}`;
    } else if (cp < 0x10000) {
      out += `\\u${hex(cp, 4)}`;
    } else {
      out += `\\u{${hex(cp, 6)}}`;
    }
    i += 1;
    count -= 1;
  }
  return `${out}"`;
}

/** A non-printable binary: `<<104, 105, 0>>`, each byte taking one unit of the shared budget. */
function inspectBytes(s: string, budget: Budget): string {
  const bytes = Buffer.from(s, 'utf8');
  const docs: string[] = [];
  let counter = budget.left;
  for (let i = 0; i < bytes.length; i++) {
    if (counter <= 0) {
      docs.push('...');
      break;
    }
    docs.push(String(bytes[i]));
    counter -= 1;
  }
  budget.left = Math.max(0, budget.left - bytes.length);
  return `<<${docs.join(', ')}>>`;
}
