/**
 * A worker in its own process, for tests that kill or freeze a worker process (SIGKILL,
 * SIGSTOP): `node --import tsx test/support/exec-worker-process.ts <nats url> <label>`.
 * Serves service `disc` (round_robin `rr` and random `any`, each answering `{label}`) and prints
 * `{"msg":"ready","id":"<instance id>"}` once its config is pushed.
 */
import { connect } from '@nats-io/transport-node';
import { defineService, fn } from '../../src/worker/define.js';
import { serve } from '../../src/worker/nats.js';

const [url, label] = process.argv.slice(2);
if (!url || !label) {
  console.error('usage: exec-worker-process.ts <nats url> <label>');
  process.exit(2);
}
const definition = defineService({
  name: 'disc',
  functions: {
    rr: fn({ chooseNode: 'round_robin', timeout: 500, handler: () => ({ label }) }),
    any: fn({ timeout: 500, handler: () => ({ label }) }),
  },
});
const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
const running = await serve(definition, { nats: nc, pushTimeoutMs: 300 });
console.log(JSON.stringify({ msg: 'ready', id: running.id, label }));
const stop = async () => {
  await running.stop();
  await nc.close();
  process.exit(0);
};
const fail = (err: unknown) => {
  console.error(err);
  process.exit(1);
};
process.on('SIGTERM', () => {
  stop().catch(fail);
});
process.on('SIGINT', () => {
  stop().catch(fail);
});
