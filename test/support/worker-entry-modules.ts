/**
 * Run with tsx by test/unit/worker-metrics-lazy.test.ts: imports the `gen-gateway/worker` entry
 * and prints whether prom-client got loaded, then loads the metrics module (what `serve()` does
 * for `metrics`) and prints it again. prom-client is CommonJS, so loading it fills require.cache.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const promLoaded = () =>
  Object.keys(require.cache).some((path) => /[\\/]prom-client[\\/]/.test(path));

await import('../../src/worker/index.js');
const afterEntry = promLoaded();
await import('../../src/worker/metrics.js');
process.stdout.write(`${JSON.stringify({ afterEntry, afterMetrics: promLoaded() })}\n`);
