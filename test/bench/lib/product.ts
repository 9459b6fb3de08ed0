/**
 * Where the bench's gateway and worker processes load the product from: the compiled `dist/`
 * (what `npm start` runs; the runner builds it first and sets BENCH_BUILT=1), or the TypeScript
 * sources through tsx when run without a build (tsx's transform adds helpers, e.g. a `__name`
 * call per function expression, that cost CPU in the hot path).
 */
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = new URL('../../../', import.meta.url);

/**
 * The module `src/<path>` (a `.js` path) from dist/ or src/. BENCH_PRODUCT_ROOT points at another
 * checkout (built) to measure an older revision with this harness (test/bench/ab.ts).
 */
export function productModule(path: string): string {
  const other = process.env.BENCH_PRODUCT_ROOT;
  const root = other ? pathToFileURL(`${other.replace(/\/$/, '')}/`) : ROOT;
  return new URL(`${process.env.BENCH_BUILT === '1' || other ? 'dist' : 'src'}/${path}`, root).href;
}

export const productRoot = fileURLToPath(ROOT);
