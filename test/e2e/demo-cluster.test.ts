/**
 * Issue 11's demo contract, as the README shows it: two demo gateways on one NATS
 * (`gen-gateway --nats URL`, the demo on) and the demo worker (`npm run worker:demo`). Clients of
 * `room:lobby` on both gateways see each other in Presence within 2 s, receive each other's
 * `shout`s and every `announcement` (demo.announce, broadcast by the worker) within 1 s.
 */
import type { Channel } from 'phoenix';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../support/gateway-process.js';
import { NatsServer } from '../support/nats.js';
import { replyOf } from '../support/phoenix-client.js';
import { DemoWorker } from '../support/ratelimit-cluster.js';
import { until } from '../support/wait.js';
import { converge, joinMember, type Member } from '../cluster/presence-support.js';

const GEN_API = 'phoenix_gen_api';

let server: NatsServer;
let gateways: GatewayProcess[] = [];
let worker: DemoWorker;
const members: Member[] = [];

/** Resolves with the ms from now until `channel` receives `event` with `payload`. */
function timeTo(channel: Channel, event: string, payload: unknown): Promise<number> {
  const started = performance.now();
  const want = JSON.stringify(payload);
  return new Promise((resolve) => {
    const ref = channel.on(event, (got) => {
      if (JSON.stringify(got) !== want) return;
      channel.off(event, ref);
      resolve(performance.now() - started);
    });
  });
}

beforeAll(async () => {
  server = await NatsServer.start();
  const workerUp = DemoWorker.start(server.url).then((w) => (worker = w));
  gateways = await Promise.all(
    [0, 1].map(() => GatewayProcess.start({ config: { demo: true }, nats: server.url })),
  );
  await workerUp;
  // Both gateways know the worker's functions (announce is callable on either).
  await Promise.all(gateways.map((gw) => gw.process.logLine('config applied', 30_000)));
});

afterAll(async () => {
  for (const member of members) member.socket.disconnect();
  await Promise.all(gateways.map((gw) => gw.stop()));
  await worker?.stop();
  await server?.stop();
});

describe('the demo on two gateways and the demo worker', () => {
  it('alice (gateway A) and bob (gateway B) see each other in Presence within 2 s', async () => {
    members.push(await joinMember(gateways[0]!.socketUrl, 'room:lobby', 'alice'));
    members.push(await joinMember(gateways[1]!.socketUrl, 'room:lobby', 'bob'));
    const ms = await converge(members, ['alice', 'bob'], 'after bob joined', 2_000);
    expect(ms).toBeLessThan(2_000);
  });

  it("each receives the other's shout within 1 s", async () => {
    const [alice, bob] = members as [Member, Member];
    const toBob = timeTo(bob.channel, 'shout', { from: 'alice', body: 'hi bob' });
    alice.channel.push('shout', { body: 'hi bob' });
    const toAlice = timeTo(alice.channel, 'shout', { from: 'bob', body: 'hi alice' });
    bob.channel.push('shout', { body: 'hi alice' });
    expect(await toBob).toBeLessThan(1_000);
    expect(await toAlice).toBeLessThan(1_000);
  });

  it('demo.announce, called on gateway A, reaches both rooms within 1 s (from: the caller)', async () => {
    const [alice, bob] = members as [Member, Member];
    const api = alice.socket.channel('gen_api:lobby', {});
    expect((await replyOf(api.join())).status).toBe('ok');
    const answers: unknown[] = [];
    api.on(GEN_API, (payload) => answers.push(payload));
    const payload = { message: 'doors close at 6', from: 'alice' };
    const atAlice = timeTo(alice.channel, 'announcement', payload);
    const atBob = timeTo(bob.channel, 'announcement', payload);
    api.push(GEN_API, {
      request_id: 'announce-1',
      service: 'demo',
      request_type: 'announce',
      args: { room: 'lobby', message: 'doors close at 6' },
    });
    expect(await atAlice).toBeLessThan(1_000);
    expect(await atBob).toBeLessThan(1_000);
    await until(() => answers.length > 0, 'the announce answer');
    expect(answers[0]).toMatchObject({ request_id: 'announce-1', success: true });
  });
});
