/**
 * gen_api request latency through a real gateway (in this process) with an echo function under
 * no policy, a local, an eventual and a strict policy, from a raw `ws` client doing one request at
 * a time; the baseline is a raw `ws` echo server answering the same frames.
 */
import { createGateway, GenApi } from '../../../src/index.js';
import { defineService, fn } from '../../../src/worker/define.js';
import type { NatsServer } from '../../support/nats.js';
import { SequentialWs, startWsEcho } from '../lib/baselines.js';
import { realTime } from '../../support/wait.js';
import type { Scope } from '../lib/runtime.js';
import { Samples, summarize, type Summary } from '../lib/stats.js';
import { policy, SERVICE } from './fixtures.js';
import { CLUSTER_POLICY } from './cluster.js';

export const E2E_CASES = ['none', 'local', 'eventual', 'strict'] as const;
export type E2eCase = (typeof E2E_CASES)[number];

export interface E2eOptions {
  rounds: number;
  perRound: number;
  /** Unmeasured rotations first. */
  warmup: number;
}

export interface E2eResult {
  latency: Record<E2eCase | 'wsEcho', Summary>;
  failures: number;
  rateLimitHealth: { fallbacks: number; timeouts: number; denied: number };
}

const echo = { args: { message: 'string' }, handler: (args: { message: string }) => args } as const;
const benchService = defineService({
  name: SERVICE,
  version: '1.0.0',
  functions: { none: fn(echo), local: fn(echo), eventual: fn(echo), strict: fn(echo) },
});

const TOPIC = 'gen_api:bench';

export async function benchE2e(
  nats: NatsServer,
  options: E2eOptions,
  scope: Scope,
): Promise<E2eResult> {
  const { algorithm, limit, windowMs } = CLUSTER_POLICY;
  const gateway = createGateway({ logger: false });
  scope.add(() => gateway.close());
  const socket = gateway.socket<{
    user_id: string | null;
    device_id: string | null;
    roles: string[] | null;
  }>('/socket', {
    connect: ({ params }) => {
      const user =
        typeof params.user_id === 'string' && params.user_id !== '' ? params.user_id : null;
      return { assigns: { user_id: user, device_id: null, roles: null }, id: null };
    },
    // Sequential requests run well above the default 1000 messages/s (and 1 MiB/s) per socket.
    messageRate: false,
    inboundByteRate: false,
  });
  const genApi = new GenApi(gateway, {
    rateLimits: {
      policies: (['local', 'eventual', 'strict'] as const).map((mode) =>
        policy(`e2e.${mode}`, mode, algorithm, limit, windowMs, mode),
      ),
    },
  }).mount(socket);
  genApi.register(benchService);
  await genApi.connectNats({ servers: nats.url, prefix: 'e2ebench', trustedNetwork: true });
  const { port } = await gateway.listen(0, '127.0.0.1');

  const client = await SequentialWs.connect(
    `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=bench-user`,
  );
  scope.add(() => client.close());
  await client.roundTrip(
    JSON.stringify(['1', '1', TOPIC, 'phx_join', {}]),
    (text) => text.includes('"phx_reply"') && text.includes('"ok"'),
  );

  const wsEcho = await startWsEcho();
  scope.add(() => wsEcho.close());
  const echoClient = await SequentialWs.connect(wsEcho.url);
  scope.add(() => echoClient.close());

  let ref = 1;
  let failures = 0;
  const call = async (requestType: E2eCase): Promise<number> => {
    const id = `r${++ref}`;
    const refText = String(ref);
    let pushed = false;
    let replied = false;
    const frame = JSON.stringify([
      '1',
      refText,
      TOPIC,
      'phoenix_gen_api',
      { request_id: id, service: SERVICE, request_type: requestType, args: { message: 'hello' } },
    ]);
    const ms = await client.roundTrip(frame, (text) => {
      const [, frameRef, , event, payload] = JSON.parse(text) as [
        unknown,
        unknown,
        string,
        string,
        Record<string, unknown>,
      ];
      if (event === 'phoenix_gen_api' && payload.request_id === id) {
        pushed = true;
        if (payload.success !== true) failures++;
      } else if (event === 'phx_reply' && frameRef === refText) replied = true;
      return pushed && replied;
    });
    return ms;
  };
  const echoFrame = JSON.stringify([
    '1',
    '999999',
    TOPIC,
    'phoenix_gen_api',
    {
      request_id: 'r999999',
      service: SERVICE,
      request_type: 'eventual',
      args: { message: 'hello' },
    },
  ]);
  const callEcho = () => echoClient.roundTrip(echoFrame, () => true);

  // Warm-up.
  for (let i = 0; i < options.warmup; i++) {
    for (const requestType of E2E_CASES) await call(requestType);
    await callEcho();
  }
  failures = 0;
  const limiterBefore = { ...genApi.rateLimits!.limiter.stats };
  const strictBefore = genApi.rateLimits!.linked!.strict.stats.timeouts;

  const samples = {
    none: new Samples(),
    local: new Samples(),
    eventual: new Samples(),
    strict: new Samples(),
    wsEcho: new Samples(),
  };
  // One request per case per rotation, in a fresh random order each time (seeded, so runs
  // repeat): drift, GC pauses and whatever the previous request leaves behind (a strict decision's
  // KV traffic) hit every case alike. A fixed cyclic order would always put the same case after
  // the strict one.
  const order: (E2eCase | 'wsEcho')[] = [...E2E_CASES, 'wsEcho'];
  const random = seededRandom(0x5eed);
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < options.perRound; i++) {
      shuffle(order, random);
      for (const which of order) {
        if (which === 'wsEcho') samples.wsEcho.add(await callEcho());
        else samples[which].add(await call(which));
      }
    }
    // A timer turn between rounds, as a server has between bursts (the eventual batch flushes).
    await realTime(1, 'a timer turn between rounds');
  }
  const stats = genApi.rateLimits!.limiter.stats;
  return {
    latency: {
      none: summarize(samples.none.values()),
      local: summarize(samples.local.values()),
      eventual: summarize(samples.eventual.values()),
      strict: summarize(samples.strict.values()),
      wsEcho: summarize(samples.wsEcho.values()),
    },
    failures,
    rateLimitHealth: {
      fallbacks: stats.fallback - limiterBefore.fallback,
      timeouts: genApi.rateLimits!.linked!.strict.stats.timeouts - strictBefore,
      denied: stats.denied - limiterBefore.denied,
    },
  };
}

/** mulberry32: a small seeded PRNG (the request order repeats from run to run). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
