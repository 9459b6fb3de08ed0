import { setTimeout as sleep } from 'node:timers/promises';
import { defineService, fn, ServiceError } from '../worker/define.js';
import type { PolicyConfig } from '../ratelimit/types.js';

/**
 * The `demo` service of the README, the tests and the examples. `npm start` runs it in-process;
 * `npm run worker:demo` serves the same definition over NATS.
 */
export const demoService = defineService({
  name: 'demo',
  version: '1.0.0',
  description: 'gen-gateway demo service',
  functions: {
    echo: fn({
      args: { message: 'string' },
      handler: (args) => args,
    }),
    /** Like echo, behind the `demo.limited` rate limit (5 per 10 s per user; see DEMO_RATE_LIMIT). */
    limited: fn({
      args: { message: 'string' },
      handler: (args) => args,
    }),
    echo_async: fn({
      response: 'async',
      args: { message: 'string' },
      handler: (args) => args,
    }),
    count: fn({
      response: 'stream',
      args: { to: 'num', interval_ms: { type: 'num', default_value: 10 } },
      timeout: 5000,
      async handler({ to, interval_ms }, ctx) {
        for (let i = 1; i <= to; i++) {
          await sleep(interval_ms, undefined, { signal: ctx.signal });
          await ctx.stream.write(i);
        }
      },
    }),
    notify: fn({
      response: 'none',
      args: { message: 'string' },
      handler: () => undefined,
    }),
    fail: fn({
      handler: () => {
        throw new ServiceError('boom');
      },
    }),
    whoami: fn({
      permission: 'any_authenticated',
      // The identity the socket's auth established (the `auth` demo contract).
      handler: (_args, ctx) => ({
        user_id: ctx.userId,
        device_id: ctx.deviceId,
        roles: ctx.roles,
      }),
    }),
    /**
     * Broadcasts `announcement` `{message, from: <caller's user_id>}` to `room:<room>` on every
     * gateway (in-process through the gateway's PubSub, on NATS over the worker's connection).
     */
    announce: fn({
      args: { room: 'string', message: 'string' },
      handler: ({ room, message }, ctx) => {
        const topic = `room:${room}`;
        ctx.broadcast(topic, 'announcement', { message, from: ctx.userId });
        return { ok: true, topic };
      },
    }),
    slow: fn({
      args: { ms: 'num' },
      timeout: 1000,
      async handler({ ms }, ctx) {
        await sleep(ms, undefined, { signal: ctx.signal });
        return { slept: ms };
      },
    }),
  },
});

/**
 * The demo's rate limit on `demo.limited`: 5 requests per 10 s per user (sliding log). Embedded it
 * is `local`; on NATS it is `eventual`, so gateways sharing a NATS cluster share the count.
 */
export function demoRateLimit(mode: 'local' | 'eventual'): PolicyConfig {
  return {
    id: 'demo.limited',
    scope: { service: 'demo', requestType: 'limited' },
    key: 'user_id',
    algorithm: 'sliding_log',
    limit: 5,
    windowMs: 10_000,
    mode,
  };
}
