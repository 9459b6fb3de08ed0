/**
 * The built package, as users run it: `npm run build` (once for this file), then the `bin`
 * (`node dist/cli/gen-gateway.js --demo`, what `npm start` runs) serves a socket and the demo echo;
 * and `node dist/demo/worker.js` (what `npm run worker:demo` runs after building) serves the demo
 * service to a `--demo --nats` gateway on a nats-server this test starts. No tsx here: plain node
 * on the compiled JavaScript.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '../support/nats.js';
import { ROOT } from '../support/spawn.js';
import { until } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';

const BUILD_TIMEOUT_MS = 240_000;

interface Proc {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** The first JSON log line on stdout whose msg is `msg`. */
  readonly logLine: (msg: string, timeoutMs?: number) => Promise<Record<string, unknown>>;
}

const procs: ChildProcess[] = [];
let nats: NatsServer | null = null;

afterEach(async () => {
  for (const child of procs.splice(0).reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
  await nats?.dispose();
  nats = null;
});

/** `node <entry> ...args` from the repository root, as a user would run it. */
function node(entry: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      HOST: undefined,
      PORT: undefined,
      GATEWAY_CONFIG: undefined,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const find = (msg: string) => {
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed.msg === msg) return parsed;
    }
    return undefined;
  };
  const logLine = (msg: string, timeoutMs = 30_000) =>
    until(
      () => {
        const found = find(msg);
        if (found) return found;
        if (child.exitCode !== null)
          throw new Error(`${entry} exited before "${msg}"; stdout: ${out} stderr: ${err}`);
        return undefined;
      },
      () => `"${msg}" from ${entry}; stdout: ${out} stderr: ${err}`,
      timeoutMs,
    );
  return { child, output: () => `${out}${err}`, logLine };
}

/** Calls the demo `echo` over gen_api on a raw socket; retries (up to `timeoutMs`) while the service is not there yet. */
async function demoEcho(
  port: number,
  timeoutMs: number,
): Promise<{ push: unknown; reply: unknown }> {
  const client = await RawClient.connect(
    `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=ada`,
  );
  try {
    expect(await client.join('gen_api:lobby', '1')).toEqual([
      '1',
      '1',
      'gen_api:lobby',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    // Ask again every 200 ms while the service is not registered yet; the last answer is
    // returned when it never succeeds, for the caller's assertion to show.
    let attempt = 0;
    let last: { push: unknown; reply: unknown } | undefined;
    try {
      return await until(
        async () => {
          attempt++;
          client.send([
            '1',
            `${attempt}`,
            'gen_api:lobby',
            'phoenix_gen_api',
            {
              request_id: `r${attempt}`,
              service: 'demo',
              request_type: 'echo',
              args: { message: 'hello' },
            },
          ]);
          const [push, reply] = await client.take(2);
          last = { push, reply };
          return ((push as unknown[])[4] as { success?: boolean }).success === true
            ? last
            : undefined;
        },
        'the demo echo service',
        { timeoutMs, intervalMs: 200 },
      );
    } catch (error) {
      if (last) return last;
      throw error;
    }
  } finally {
    client.close();
  }
}

const echoed = (requestId: string) => [
  '1',
  null,
  'gen_api:lobby',
  'phoenix_gen_api',
  {
    request_id: requestId,
    result: { message: 'hello' },
    success: true,
    error: null,
    async: false,
    has_more: false,
    can_retry: false,
  },
];

let bin: string;
beforeAll(async () => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    scripts: Record<string, string>;
  };
  bin = pkg.bin['gen-gateway']!;
  expect(bin).toBe('dist/cli/gen-gateway.js');
  expect(pkg.scripts['worker:demo']).toBe('npm run build && exec node dist/demo/worker.js');
  // The README's first command runs the demo: only --demo turns it on.
  expect(pkg.scripts.start).toBe('npm run build && exec node dist/cli/gen-gateway.js --demo');
  try {
    await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT, timeout: BUILD_TIMEOUT_MS });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed:\n${stdout ?? ''}${stderr ?? ''}`, { cause: err });
  }
}, BUILD_TIMEOUT_MS + 10_000);

/** The modification time of every file under dist/, by path. */
async function distTimes(): Promise<Map<string, number>> {
  const times = new Map<string, number>();
  const entries = await readdir(join(ROOT, 'dist'), { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    times.set(path, (await stat(path)).mtimeMs);
  }
  return times;
}

describe('the built package', () => {
  it(
    'building again with nothing changed rewrites nothing (npm start and worker:demo start at once)',
    async () => {
      const before = await distTimes();
      expect(before.size).toBeGreaterThan(100);
      await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT, timeout: BUILD_TIMEOUT_MS });
      const after = await distTimes();
      const rewritten = [...after].filter(([path, time]) => before.get(path) !== time);
      expect(rewritten).toEqual([]);
      expect(after.size).toBe(before.size);
    },
    BUILD_TIMEOUT_MS,
  );

  it('the bin is an executable node script that serves a socket and the demo echo', async () => {
    expect((await readFile(join(ROOT, bin), 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(
      true,
    );
    const gateway = node(bin, ['--demo', '--port', '0']);
    const listening = await gateway.logLine('gateway listening');
    expect(listening.host).toBe('127.0.0.1');
    const port = Number(listening.port);
    const { push, reply } = await demoEcho(port, 0);
    expect(push).toEqual(echoed('r1'));
    expect(reply).toEqual([
      '1',
      '1',
      'gen_api:lobby',
      'phx_reply',
      { status: 'ok', response: 'echo' },
    ]);
  });

  it('dist/demo/worker.js serves the demo service to a gateway started with --demo --nats', async () => {
    nats = await NatsServer.start();
    const gateway = node(bin, ['--demo', '--port', '0', '--nats', nats.url]);
    const port = Number((await gateway.logLine('gateway listening')).port);
    // The demo service is not in-process with --nats: echo must come from the worker.
    const worker = node('dist/demo/worker.js', [], { NATS_URL: nats.url });
    const ready = await worker.logLine('demo worker ready');
    expect(ready.url).toBe(`127.0.0.1:${nats.port}`); // the server it connected to
    const { push, reply } = await demoEcho(port, 10_000);
    const requestId = ((push as unknown[])[4] as { request_id: string }).request_id;
    expect(push).toEqual(echoed(requestId));
    expect(reply).toEqual([
      '1',
      requestId.slice(1),
      'gen_api:lobby',
      'phx_reply',
      { status: 'ok', response: 'echo' },
    ]);

    // Without the worker the function is gone: the gateway has nothing else to run it on.
    worker.child.kill('SIGTERM');
    expect(await new Promise((resolve) => worker.child.once('exit', resolve))).toBe(0);
    const after = await demoEcho(port, 0);
    expect((after.push as unknown[])[4]).toMatchObject({
      success: false,
      error: 'Service temporarily unavailable',
      can_retry: true,
    });
  });
});
