import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/** In-process files: no child processes and no nats-server, so they can share worker processes. */
const IN_PROCESS = ['test/unit/**/*.test.ts', 'test/conformance/**/*.test.ts'];

const shared = {
  testTimeout: 20_000,
  hookTimeout: 20_000,
  pool: 'forks',
} satisfies TestProjectInlineConfiguration['test'];

export default defineConfig({
  test: {
    // Most files spend their time waiting on real processes (nats-server, gateways, workers), so
    // two files per core keeps both cores busy; tests wait on events, not on timings, so they
    // hold under that contention (and under a busy core besides).
    maxWorkers: '200%',
    reporters: ['default'],
    projects: [
      {
        test: {
          ...shared,
          name: 'in-process',
          include: IN_PROCESS,
          // A fresh process per file costs about as much as these files' tests; they hold no
          // global state, so they run one after another in the same workers.
          isolate: false,
        },
      },
      {
        test: {
          ...shared,
          name: 'processes',
          include: ['test/**/*.test.ts'],
          exclude: IN_PROCESS,
        },
      },
    ],
  },
});
