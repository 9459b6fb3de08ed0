/**
 * The worker entry stays free of the gateway's server dependencies: importing `gen-gateway/worker`
 * does not load prom-client; only `serve(…, { metrics })` does (a dynamic import of
 * src/worker/metrics.ts). Checked in a fresh process, where nothing else loaded it.
 */
import { describe, expect, it } from 'vitest';
import { spawnTs } from '../support/spawn.js';

describe('gen-gateway/worker and prom-client', () => {
  it('the entry does not load prom-client; the metrics module does', async () => {
    const proc = spawnTs('test/support/worker-entry-modules.ts');
    expect(await proc.exited).toBe(0);
    expect(JSON.parse(proc.stdout().trim())).toEqual({ afterEntry: false, afterMetrics: true });
  }, 30_000);
});
