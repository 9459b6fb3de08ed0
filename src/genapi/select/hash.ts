/**
 * The stable hash behind the `hash` and `hash_arg` node modes (PhoenixGenApi uses `:erlang.phash2`;
 * cross-runtime compatibility with it is not required, only stability within this gateway).
 */

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * A fast, stable 32-bit unsigned hash of `text`: FNV-1a over the UTF-16 code units, followed by the
 * murmur3 `fmix32` finaliser.
 *
 * The finaliser matters because the caller reduces the hash modulo a small instance count: in plain
 * FNV-1a the low k bits of the result depend only on the low k bits of every code unit (the multiply
 * never carries downwards), so with 2, 4 or 8 instances keys that differ only in higher bits of a
 * character (`"a"` 0x61 vs `"q"` 0x71) would always land on the same instance. `fmix32` spreads every
 * input bit over the whole word.
 */
export function stableHash(text: string): number {
  let h = FNV_OFFSET_BASIS;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
