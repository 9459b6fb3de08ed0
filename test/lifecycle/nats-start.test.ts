/**
 * Start without NATS, through the built command: `gen-gateway --demo --nats <a NATS that is down>`
 * listens at once, accepts WebSocket upgrades, answers gen_api with `Service temporarily
 * unavailable` (can_retry) and reports not ready (`nats`), logging its retries at a bounded rate;
 * once a real nats-server comes up on that port and the demo worker (`node dist/demo/worker.js`)
 * with it, it serves `echo` (the issue 14 demo contract). NATS lost mid-run and back works as
 * before; credentials refused by a server that comes up later still exit 2.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, NatsServer } from '../support/nats.js';
import { until, within } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';
import { build, get, killAll, node } from './support.js';

const CLI = 'dist/cli/gen-gateway.js';
const UNAVAILABLE = {
  result: null,
  success: false,
  error: 'Service temporarily unavailable',
  async: false,
  has_more: false,
  can_retry: true,
};

let nats: NatsServer | null = null;
beforeAll(build, 240_000);
afterEach(async () => {
  await killAll();
  await nats?.dispose();
  nats = null;
});

/** A gen_api client on `gen_api:lobby` as user ada. */
async function genApiClient(port: number): Promise<RawClient> {
  const client = await RawClient.connect(
    `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=ada`,
  );
  await client.join('gen_api:lobby', '1');
  return client;
}

let requests = 0;
/** One demo `echo` request: the Response pushed for it. */
async function echo(client: RawClient): Promise<Record<string, unknown>> {
  const id = `r${++requests}`;
  client.send([
    '1',
    id,
    'gen_api:lobby',
    'phoenix_gen_api',
    { request_id: id, service: 'demo', request_type: 'echo', args: { message: 'hello' } },
  ]);
  // Other frames (replies, the room's presence pushes) are skipped.
  for (;;) {
    const [frame] = await client.take(1);
    const payload = Array.isArray(frame) ? (frame[4] as Record<string, unknown> | undefined) : null;
    if (Array.isArray(frame) && frame[3] === 'phoenix_gen_api' && payload?.request_id === id)
      return payload;
  }
}

/** Asks `echo` every 200 ms until it succeeds (or `timeoutMs` passes). */
function echoServed(client: RawClient, timeoutMs: number): Promise<Record<string, unknown>> {
  return until(
    async () => {
      const response = await echo(client);
      return response.success === true ? response : undefined;
    },
    'the demo echo to be served',
    { timeoutMs, intervalMs: 200 },
  );
}

describe('gen-gateway --nats <down>', () => {
  it('listens at once, answers can_retry and is not ready; serves echo once NATS and the worker are up', async () => {
    const natsPort = await freePort();
    const natsUrl = `nats://127.0.0.1:${natsPort}`;
    const proc = node(CLI, ['--demo', '--port', '0', '--nats', natsUrl]);
    const port = (await proc.logLine('gateway listening', 15_000)).port as number;

    const client = await genApiClient(port);
    expect(await echo(client)).toEqual({ request_id: `r${requests}`, ...UNAVAILABLE });
    expect(await get(port, '/readyz')).toEqual({
      status: 503,
      body: { status: 'not_ready', reasons: ['nats'] },
    });
    expect((await get(port, '/healthz')).status).toBe(200);
    // Channels that need no NATS are served meanwhile.
    const chat = await RawClient.connect(
      `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=bob`,
    );
    expect(await chat.join('room:lobby', '1', { name: 'bob' })).toMatchObject([
      '1',
      '1',
      'room:lobby',
      'phx_reply',
      { status: 'ok' },
    ]);
    chat.close();
    const retrying = await proc.logLine(
      'NATS not reachable, retrying in the background (gen_api on NATS answers "Service temporarily unavailable" meanwhile)',
    );
    expect(retrying.attempt).toBe(1);

    nats = await NatsServer.start({ port: natsPort });
    const worker = node('dist/demo/worker.js', [], { NATS_URL: natsUrl });
    await worker.logLine('demo worker ready');
    expect(await echoServed(client, 5_000)).toMatchObject({
      success: true,
      result: { message: 'hello' },
    });
    await until(async () => (await get(port, '/readyz')).status === 200, 'readyz 200');
    // Retries were logged once in all (the next line would come after 30 s).
    const notReachable = proc
      .output()
      .split('\n')
      .filter((line) => line.includes('"msg":"NATS not reachable'));
    expect(notReachable).toHaveLength(1);
    expect(proc.output()).toContain('"msg":"connected to NATS"');

    // NATS lost mid-run: can_retry and not ready; back: served again.
    await nats.stop();
    await until(
      async () => (await echo(client)).can_retry === true,
      'can_retry while NATS is down',
    );
    await until(async () => {
      const ready = await get(port, '/readyz');
      return ready.status === 503 && (ready.body as { reasons: string[] }).reasons.includes('nats');
    }, 'readyz to report nats');
    await nats.restart();
    expect(await echoServed(client, 20_000)).toMatchObject({ success: true });
    await until(async () => (await get(port, '/readyz')).status === 200, 'readyz 200 again');
    client.close();
    proc.child.kill('SIGTERM');
    expect(await within(proc.exited, 'the gateway to exit')).toBe(0);
  });

  it('exits 2 when the server that comes up later refuses its credentials', async () => {
    const natsPort = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'gen-gateway-lifecycle-'));
    const file = join(dir, 'gateway.json');
    await writeFile(
      file,
      JSON.stringify({
        demo: true,
        nats: { servers: `nats://127.0.0.1:${natsPort}`, user: 'gateway', pass: 'wrong' },
      }),
    );
    const proc = node(CLI, ['--config', file, '--port', '0']);
    await proc.logLine('gateway listening', 15_000);
    nats = await NatsServer.start({
      port: natsPort,
      config: 'authorization { user: gateway, password: right }\n',
    });
    expect(await within(proc.exited, 'the gateway to exit', 20_000)).toBe(2);
    expect(proc.output()).toContain('NATS auth failed');
  });

  it('still fails fast (exit 2) on refused credentials when the server is up at start', async () => {
    nats = await NatsServer.start({
      config: 'authorization { user: gateway, password: right }\n',
    });
    const dir = await mkdtemp(join(tmpdir(), 'gen-gateway-lifecycle-'));
    const file = join(dir, 'gateway.json');
    await writeFile(
      file,
      JSON.stringify({ demo: true, nats: { servers: nats.url, user: 'gateway', pass: 'wrong' } }),
    );
    const proc = node(CLI, ['--config', file, '--port', '0']);
    expect(await within(proc.exited, 'the gateway to exit', 20_000)).toBe(2);
    expect(proc.output()).toContain('NATS auth failed');
    expect(proc.output()).not.toContain('"msg":"gateway listening"');
  });
});
