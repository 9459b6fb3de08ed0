// A gen_api worker in 20 lines: `npx tsx examples/worker/greeter.ts` next to `gen-gateway --demo --nats nats://127.0.0.1:4222`.
// NATS_URL, NATS_CREDS, NATS_USER/NATS_PASS, NATS_TOKEN, NATS_CA, … say where and as whom (README: NATS credentials).
import { defineService, fn, runWorker } from 'gen-gateway/worker';

const greeter = defineService({
  name: 'greeter',
  version: '1.0.0',
  functions: {
    hello: fn({
      args: { name: 'string' },
      handler: ({ name }, ctx) => ({ greeting: `Hello, ${name}!`, from: ctx.userId }),
    }),
    countdown: fn({
      response: 'stream',
      args: { from: 'num' },
      async handler({ from }, ctx) {
        for (let i = from; i > 0; i--) await ctx.stream.write(i);
      },
    }),
  },
});

// Connects (waits for NATS, reconnects for ever), serves, drains on SIGTERM/SIGINT and exits 0;
// exits 1 (and logs why) if the service ever ends otherwise, so a supervisor restarts it.
await runWorker(greeter);
