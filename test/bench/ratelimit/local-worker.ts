/**
 * Runs local-decision benchmarks in a fresh process (so they get a clean JIT and heap, whatever
 * ran before), one job after the other, and prints their LocalResults as one JSON array on stdout.
 * The full bench gives each process one job; the quick smoke gives one process every job.
 * Usage: node --import tsx local-worker.ts '<{"jobs": [{"algorithm", "regime"}], "options"}>'
 */
import { benchLocal, type LocalJob, type LocalOptions, type LocalResult } from './local.js';

const input = JSON.parse(process.argv[2] ?? '{}') as { jobs: LocalJob[]; options: LocalOptions };
const results: LocalResult[] = [];
for (const job of input.jobs)
  results.push(await benchLocal(job.algorithm, job.regime, input.options));
process.stdout.write(`${JSON.stringify(results)}\n`);
