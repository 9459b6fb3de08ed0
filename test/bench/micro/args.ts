/**
 * Micro-benchmark of gen_api argument checking (issue 15, "compiled argument checks"): CPU per
 * valid call of a typical spec, measured with process.cpuUsage over CALLS calls, RUNS times; prints
 * the median and the spread. Runs in-process, no gateway, so it is cheap on a shared machine.
 * Run it compiled by tsc, as the gateway runs (dist/):
 *
 *   npx tsc --outDir /tmp/argbench --rootDir . --strict --module NodeNext \
 *     --moduleResolution NodeNext --target ES2022 --skipLibCheck --types node \
 *     test/bench/micro/args.ts && node /tmp/argbench/test/bench/micro/args.js
 *
 * (`npx tsx test/bench/micro/args.ts` works too, but tsx's esbuild transform keeps function names
 * by a defineProperty on every closure it creates, which triples the interpreter's figure.)
 *
 * `interpreted` is the pre-compilation interpreter kept as the test oracle; `convertArgs` is the
 * public entry point and `compiled` the checker the executor calls.
 */
import { argChecker } from '../../../src/genapi/args/compile.js';
import { convertArgs, DEFAULT_ARG_LIMITS } from '../../../src/genapi/args/convert.js';
import { parseArgTypes } from '../../../src/genapi/config/arg-spec.js';
import { interpretArgs } from '../../unit/genapi/support/args-interpreter.js';

const CALLS = 100_000;
const RUNS = 9;
const REQUEST_TYPE = 'get_user_feed';

/** A typical function: ids, a bounded string, optional numbers, a flag, a tag list, a time. */
const parsed = parseArgTypes(
  {
    user_id: 'uuid',
    query: { type: 'string', max_bytes: 200 },
    limit: { type: 'num', allow_nil: true, default_value: 20 },
    include_hidden: 'boolean',
    tags: { type: 'list_string', max_items: 10, max_item_bytes: 50 },
    since: { type: 'datetime', allow_nil: true },
  },
  null,
);
if (!parsed.ok || parsed.rules === null) throw new Error('bench spec does not parse');
// Frozen as validateFunConfig freezes a config's rules (only a frozen list's checker is cached).
const rules = Object.freeze(parsed.rules);

const ARGS = {
  user_id: '6ba7b810-9dad-41d1-80b4-00c04fd430c8',
  query: 'coffee near the station',
  include_hidden: false,
  tags: ['food', 'drink', 'morning'],
  since: null,
};

type Check = () => unknown;

const compiled = argChecker(rules);
const cases: Record<string, Check> = {
  interpreted: () => interpretArgs(rules, ARGS, REQUEST_TYPE, DEFAULT_ARG_LIMITS),
  convertArgs: () => convertArgs(rules, ARGS, REQUEST_TYPE, DEFAULT_ARG_LIMITS),
  compiled: () => compiled(ARGS, REQUEST_TYPE, DEFAULT_ARG_LIMITS),
};

/** CPU µs (user + system) of CALLS calls. */
function run(check: Check): number {
  let sink = 0;
  const start = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) if (check() !== undefined) sink++;
  const used = process.cpuUsage(start);
  if (sink !== CALLS) throw new Error('a check returned nothing');
  return used.user + used.system;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

for (const check of Object.values(cases)) run(check); // warm-up: JIT every path first
const results: Record<string, number[]> = {};
for (let r = 0; r < RUNS; r++) {
  // Interleaved so a noisy neighbour slows every case alike.
  for (const [name, check] of Object.entries(cases)) (results[name] ??= []).push(run(check));
}
for (const [name, samples] of Object.entries(results)) {
  const perCallNs = (median(samples) * 1000) / CALLS;
  const lo = (Math.min(...samples) * 1000) / CALLS;
  const hi = (Math.max(...samples) * 1000) / CALLS;
  console.log(
    `${name.padEnd(12)} median ${perCallNs.toFixed(0).padStart(5)} ns/call CPU` +
      `  (min ${lo.toFixed(0)}, max ${hi.toFixed(0)}; ${RUNS} runs × ${CALLS} calls)`,
  );
}
