import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/** In-process files: no child processes and no nats-server, so they can share worker processes. */
const IN_PROCESS = ['test/unit/**/*.test.ts', 'test/conformance/**/*.test.ts'];

/**
 * Files that assert latency or recovery bounds under load they make themselves (200 clients,
 * JSON bombs): they run after every other file, one at a time, so the bound measures the gateway
 * and not the other test files competing for the same cores.
 */
const ALONE = [
  'test/fuzz/json-bomb.test.ts',
  'test/genapi/fault-isolation.test.ts',
  'test/genapi/fault-gateway-nats.test.ts',
  // Not latency-bound itself, but `npm install` from git builds with every core for a minute,
  // which would stretch the bounds of the files running beside it.
  'test/package/git-install.test.ts',
];

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
          sequence: { groupOrder: 0 },
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
          sequence: { groupOrder: 0 },
          include: ['test/**/*.test.ts'],
          exclude: [...IN_PROCESS, ...ALONE],
        },
      },
      {
        test: {
          ...shared,
          name: 'alone',
          include: ALONE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
