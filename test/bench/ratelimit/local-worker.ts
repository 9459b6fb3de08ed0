/**
 * Runs one local-decision benchmark in a fresh process (so every algorithm gets a clean JIT and
 * heap, whatever ran before) and prints its LocalResult as JSON on stdout.
 * Usage: node --import tsx local-worker.ts '<{"algorithm", "regime", "options"}>'
 */
import type { AlgorithmName } from '../../../src/ratelimit/types.js';
import { benchLocal, type LocalOptions, type Regime } from './local.js';

const input = JSON.parse(process.argv[2] ?? '{}') as {
  algorithm: AlgorithmName;
  regime: Regime;
  options: LocalOptions;
};
const result = await benchLocal(input.algorithm, input.regime, input.options);
process.stdout.write(`${JSON.stringify(result)}\n`);
