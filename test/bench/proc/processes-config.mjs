/**
 * The config module of the cluster suite's `gen-gateway --processes N` runs (a JS config module,
 * README "Configuration"): the demo (room channel, identity from connect params) plus what the
 * CPU-bound comparisons need in every gateway process, code a JSON file cannot hold:
 * - an in-process `bench` service (`genApi.register`: `nodes: "local"`, so requests never leave
 *   the process although NATS is configured) whose sync `echo` returns its arguments;
 * - `echo:*`, a channel that replies to any event with its payload (no Presence, no broadcast).
 * The product comes from dist/ when the bench runner built it (BENCH_BUILT=1), else from src/
 * (the command then runs under tsx, which loads .ts). BENCH_NODE_ID names the nodes.
 */
import { env } from 'node:process';
import { URL } from 'node:url';

const product = (path) =>
  new URL(
    `../../../${env.BENCH_BUILT === '1' ? 'dist' : 'src'}/${env.BENCH_BUILT === '1' ? path : path.replace(/\.js$/, '.ts')}`,
    import.meta.url,
  ).href;

const { defineService, fn } = await import(product('worker/index.js'));
const { defineChannel, ok } = await import(product('index.js'));

const benchService = defineService({
  name: 'bench',
  version: '1.0.0',
  functions: {
    echo: fn({ args: { message: 'string' }, handler: (args) => args }),
  },
});

const echoChannel = defineChannel({
  join: () => ok(),
  handleIn: (_event, payload) => ok(payload),
});

export default {
  demo: true,
  nodeId: env.BENCH_NODE_ID ?? 'bench-processes',
  channels: [{ pattern: 'echo:*', handler: echoChannel }],
  setup(_gateway, genApi) {
    genApi.register(benchService);
  },
};
