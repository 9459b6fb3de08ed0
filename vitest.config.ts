import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Most files spend their time waiting on real processes (nats-server, gateways, workers), so
    // 1.5 files per core keeps both cores busy; tests wait on events, not on timings, so they
    // hold under that contention (and under a busy core besides).
    maxWorkers: '150%',
    reporters: ['default'],
  },
});
