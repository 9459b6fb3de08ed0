/**
 * The demo contract of the issue "Rate limiting that holds across gateway nodes", across two real
 * gateway processes (`gen-gateway --config {demo: true} --nats <url>`) on one real nats-server,
 * the demo service served by the real demo worker process, and the real `phoenix` JS client:
 * `demo.limited` is 5 per 10 s per user_id (sliding log) and `eventual` on NATS, so 5 calls
 * through gateway A and a 6th through gateway B within the window → the 6th is denied with exactly
 * "Rate limit exceeded. Please retry after N seconds." (N ≥ 1, rounded up) and can_retry true;
 * other users are unaffected; the window frees again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import { GatewayProcess } from '../support/gateway-process.js';
import { NatsServer } from '../support/nats.js';
import { replyOf } from '../support/phoenix-client.js';
import { ADMIN_TOKEN, DemoWorker, hitsOf, type KeyStatus } from '../support/ratelimit-cluster.js';
import { realTime, until } from '../support/wait.js';

const TOPIC = 'gen_api:lobby';
const EVENT = 'phoenix_gen_api';

interface Pushed {
  request_id: string;
  result: unknown;
  success: boolean;
  error: string | null;
  async: boolean;
  has_more: boolean;
  can_retry: boolean;
  rate_limit?: {
    policy: string;
    limit: number;
    window_ms: number;
    remaining: number;
    reset_ms: number;
    retry_after_ms: number;
    source: string;
  };
}

let nats: NatsServer;
let worker: DemoWorker;
let a: GatewayProcess;
let b: GatewayProcess;
const sockets: Socket[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  // The worker and the gateways start side by side: a gateway pulls the worker's config when it
  // discovers it.
  const workerUp = DemoWorker.start(nats.url).then((started) => (worker = started));
  // The admin API is only read (GET key status) to see when A's hits reached B.
  const config = { demo: true, admin: { token: ADMIN_TOKEN } };
  [a, b] = await Promise.all([
    GatewayProcess.start({ config, nats: nats.url }),
    GatewayProcess.start({ config, nats: nats.url }),
  ]);
  await workerUp;
  await Promise.all([a, b].map((gw) => gw.process.logLine('config applied', 20_000)));
}, 60_000);
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});
afterAll(async () => {
  for (const gw of [a, b]) if (gw) await gw.stop().catch(() => undefined);
  await worker?.stop();
  await nats?.dispose();
});

/** A real phoenix client joined to gen_api on `gw` as `user`. */
async function join(gw: GatewayProcess, user: string): Promise<Channel> {
  const socket = new Socket(gw.socketUrl, {
    transport: WebSocket as unknown as TransportConstructor,
    params: { user_id: user, device_id: `${user}-dev` },
  });
  sockets.push(socket);
  socket.connect();
  await until(() => socket.isConnected(), 'socket open');
  const channel = socket.channel(TOPIC, {});
  const reply = await replyOf(channel.join());
  expect(reply.status).toBe('ok');
  return channel;
}

let ids = 0;

/** Pushes a `demo.limited` call and waits for its gen_api push and its phx_reply. */
async function limited(
  channel: Channel,
  message: string,
): Promise<{ push: Pushed; reply: { status: string; response: unknown }; at: number }> {
  const requestId = `lim-${++ids}`;
  const pushes: Pushed[] = [];
  const ref = channel.on(EVENT, (payload) => {
    if ((payload as Pushed).request_id === requestId) pushes.push(payload as Pushed);
  });
  try {
    const push = channel.push(EVENT, {
      request_id: requestId,
      service: 'demo',
      request_type: 'limited',
      args: { message },
    });
    const reply = await replyOf(push, 10_000);
    await until(() => pushes.length > 0, `the push for ${requestId}`);
    return { push: pushes[0]!, reply, at: Date.now() };
  } finally {
    channel.off(EVENT, ref);
  }
}

async function status(gw: GatewayProcess, user: string): Promise<KeyStatus> {
  const res = await fetch(`${gw.httpUrl}/admin/rate-limits/policies/demo.limited/keys/${user}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as KeyStatus;
}

const allowed = (id: string, message: string): Pushed => ({
  request_id: id,
  result: { message },
  success: true,
  error: null,
  async: false,
  has_more: false,
  can_retry: false,
});

describe('demo.limited across two gateway processes on one NATS (eventual)', () => {
  it('5 calls through A, the 6th through B is denied with the PhoenixGenApi message; u2 unaffected; the window frees again', async () => {
    const u1a = await join(a, 'u1');
    const u1b = await join(b, 'u1');

    for (let i = 1; i <= 5; i++) {
      const { push, reply } = await limited(u1a, `hello ${i}`);
      expect(push).toEqual(allowed(push.request_id, `hello ${i}`));
      expect(reply).toEqual({ status: 'ok', response: 'limited' });
    }
    // Eventual: A's hits reach B within a propagation delay (batches every 5 ms); B's admin view says when.
    await until(async () => hitsOf(await status(b, 'u1')) === 5, "A's 5 hits counted on B");

    const sixth = await limited(u1b, 'six');
    expect(sixth.reply).toEqual({ status: 'ok', response: 'limited' });
    const { push } = sixth;
    const details = push.rate_limit!;
    const seconds = Math.ceil(details.retry_after_ms / 1000);
    expect(push).toEqual({
      request_id: push.request_id,
      result: null,
      success: false,
      error: `Rate limit exceeded. Please retry after ${seconds} seconds.`,
      async: false,
      has_more: false,
      can_retry: true,
      rate_limit: {
        policy: 'demo.limited',
        limit: 5,
        window_ms: 10_000,
        remaining: 0,
        reset_ms: details.reset_ms,
        retry_after_ms: details.retry_after_ms,
        source: 'eventual',
      },
    });
    expect(seconds).toBeGreaterThanOrEqual(1);
    expect(seconds).toBeLessThanOrEqual(10);
    expect(details.retry_after_ms).toBeGreaterThan(0);
    expect(details.retry_after_ms).toBeLessThanOrEqual(10_000);
    expect(details.reset_ms).toBeGreaterThan(0);

    // A denies u1 as well (the 6th was not counted anywhere: denied hits are not broadcast).
    const onA = await limited(u1a, 'seven');
    expect(onA.push.success).toBe(false);
    expect(onA.push.error).toMatch(
      /^Rate limit exceeded\. Please retry after ([1-9]|10) seconds\.$/,
    );
    expect(onA.push.can_retry).toBe(true);
    expect(onA.push.rate_limit?.source).toBe('eventual');
    expect(hitsOf(await status(a, 'u1'))).toBe(5);
    expect(hitsOf(await status(b, 'u1'))).toBe(5);

    // Another user is unaffected on both gateways.
    for (const gw of [a, b]) {
      const u2 = await join(gw, 'u2');
      const { push: other } = await limited(u2, 'other user');
      expect(other).toEqual(allowed(other.request_id, 'other user'));
    }

    // The window frees again: after retry_after_ms (counted from when the denial arrived) a call succeeds, on B.
    await realTime(
      details.retry_after_ms,
      "the gateway processes' own clocks must pass retry_after_ms",
    );
    const later = await limited(u1b, 'later');
    expect(later.push).toEqual(allowed(later.push.request_id, 'later'));
  }, 45_000);
});
