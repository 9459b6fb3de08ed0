/**
 * The README's gen_api paths as separate processes: `gen-gateway --demo` embedded with the client
 * example; and `gen-gateway --demo --nats` with the demo worker (`worker:demo`) and the 20-line greeter
 * worker example on a nats-server the test starts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NatsServer } from '../support/nats.js';
import { spawnTs, type Spawned } from '../support/spawn.js';
import { until } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';

const procs: Spawned[] = [];
let nats: NatsServer | null = null;

function run(entry: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Spawned {
  const proc = spawnTs(entry, args, env);
  procs.push(proc);
  return proc;
}

afterEach(async () => {
  for (const proc of procs.splice(0).reverse()) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
  await nats?.dispose();
  nats = null;
});

async function gatewayPort(proc: Spawned): Promise<number> {
  return Number((await proc.logLine('gateway listening')).port);
}

async function output(proc: Spawned): Promise<string> {
  await proc.exited;
  return proc.stdout();
}

describe('gen_api examples', () => {
  it('embedded: the client example calls echo, streams count and hits the demo rate limit', async () => {
    const gateway = run('src/cli/gen-gateway.ts', ['--demo', '--port', '0']);
    const port = await gatewayPort(gateway);
    const client = run('examples/genapi/client.ts', [], { URL: `ws://127.0.0.1:${port}/socket` });
    const out = await output(client);
    expect(out).toContain("echo -> { message: 'hello' }");
    expect(out).toContain('count -> 1 2 3 4 5');
    expect(out).toContain('limited -> ok ok ok ok ok refused');
    expect(out).toMatch(
      /refused with: Rate limit exceeded\. Please retry after (10|9) seconds\. \{"policy":"demo\.limited"/,
    );
  });

  it('on NATS: gen-gateway --demo --nats with worker:demo and the greeter worker', async () => {
    nats = await NatsServer.start();
    const gateway = run('src/cli/gen-gateway.ts', ['--demo', '--port', '0', '--nats', nats.url]);
    const port = await gatewayPort(gateway);
    // Both workers start once the gateway listens (their config pushes reach it), side by side:
    // each is a second or more of tsx start-up.
    const demo = run('src/demo/worker.ts', [], { NATS_URL: nats.url });
    const greeter = run('examples/worker/greeter.ts', [], { NATS_URL: nats.url });
    await demo.logLine('demo worker ready');

    const client = run('examples/genapi/client.ts', [], { URL: `ws://127.0.0.1:${port}/socket` });
    const out = await output(client);
    expect(out).toContain('count -> 1 2 3 4 5');
    // On NATS the demo policy is eventual (shared by every gateway on this NATS).
    expect(out).toContain('limited -> ok ok ok ok ok refused');
    expect(out).toContain('"source":"eventual"');

    const raw = await RawClient.connect(
      `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=ada`,
    );
    await raw.join('gen_api', '1');
    // The greeter registers after the gateway: ask again (every 200 ms) until its pushed config
    // is live, then check the answer.
    const [push, reply] = await until(
      async () => {
        raw.send([
          '1',
          'h',
          'gen_api',
          'phoenix_gen_api',
          { request_id: 'hi', service: 'greeter', request_type: 'hello', args: { name: 'Ada' } },
        ]);
        const frames = await raw.take(2);
        const result = (frames[0] as unknown[])[4] as { success?: boolean } | undefined;
        return result?.success === true ? frames : undefined;
      },
      () => `the greeter answering: ${greeter.stdout()} ${greeter.stderr()}`,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect((push as unknown[])[4]).toMatchObject({
      result: { greeting: 'Hello, Ada!', from: 'ada' },
    });
    expect(reply).toEqual(['1', 'h', 'gen_api', 'phx_reply', { status: 'ok', response: 'hello' }]);
    raw.close();
  });
});
