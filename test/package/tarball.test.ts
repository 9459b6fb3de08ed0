/**
 * The package as a user gets it: `npm pack` of this checkout (built first), the tarball installed
 * into an empty project with `npm install <tarball>` (from the npm cache, no network needed once
 * `npm ci` ran here), and then, in that project, with plain node:
 * - the README's "worker in 20 lines" (taken from README.md, so the README stays runnable) and the
 *   installed `gen-gateway` bin serve a real `phoenix` client over a real nats-server;
 * - `import "gen-gateway/worker"` loads none of the gateway's server dependencies (a loader hook
 *   records every module the import resolves, and require.cache shows the CommonJS ones).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Socket } from 'phoenix';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exchange, joinedChannel, phoenixSocket, resp } from '../support/genapi-phoenix.js';
import { NatsServer } from '../support/nats.js';
import { ROOT } from '../support/spawn.js';
import { until } from '../support/wait.js';

/** Build, pack and install together: a full build and a cold install on a loaded 2-core machine. */
const SETUP_TIMEOUT_MS = 300_000;

/**
 * Packages only the gateway uses (HTTP/WebSocket server, auth, rate limits, metrics, the Phoenix
 * client for the dashboard, pretty logs): a worker that imports `gen-gateway/worker` must not
 * load any of them.
 */
const SERVER_ONLY = [
  'ws',
  'pino-pretty',
  'prom-client',
  'jose',
  'lru-cache',
  'cockatiel',
  'phoenix',
  '@nats-io/jetstream',
  '@nats-io/kv',
];

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let dir = '';
let project = '';
const procs: ChildProcess[] = [];
const sockets: Socket[] = [];
let nats: NatsServer | null = null;

/** Runs a command; on failure the error carries its output. */
async function sh(command: string, args: string[], cwd: string): Promise<string> {
  try {
    return (await run(command, args, { cwd, timeout: SETUP_TIMEOUT_MS })).stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`, {
      cause: err,
    });
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gen-gateway-package-'));
  await sh(npm, ['run', '--silent', 'build'], ROOT);
  // --ignore-scripts: the build just ran; `prepare` would print into the JSON.
  const [packed] = JSON.parse(
    await sh(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], ROOT),
  ) as { filename: string }[];
  project = join(dir, 'app');
  await sh('mkdir', [project], dir);
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module' }),
  );
  await sh(
    npm,
    ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, packed!.filename)],
    project,
  );
}, SETUP_TIMEOUT_MS);

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.disconnect();
  for (const child of procs.splice(0).reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
  await nats?.dispose();
  nats = null;
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `node ...args` in the installed project; its output is collected for assertions and errors. */
function node(args: string[], env: NodeJS.ProcessEnv = {}): { out: () => string } {
  const child = spawn(process.execPath, args, {
    cwd: project,
    env: { ...process.env, LOG_LEVEL: 'info', HOST: undefined, PORT: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(child);
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return { out: () => out };
}

/** The code block under README's "### A worker in 20 lines" heading. */
async function readmeWorker(): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### A worker in 20 lines'));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('README.md has no ```ts block under "A worker in 20 lines"');
  return block;
}

describe('the packed tarball installed into an empty project', () => {
  it('has the compiled entries and the bin, and no sources or build state', async () => {
    const installed = join(project, 'node_modules', 'gen-gateway');
    const pkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    for (const file of ['dist/index.js', 'dist/worker/index.d.ts', pkg.bin['gen-gateway']!])
      await expect(readFile(join(installed, file))).resolves.toBeDefined();
    await expect(readFile(join(installed, 'dist/.tsbuildinfo'))).rejects.toThrow(/ENOENT/);
    await expect(readFile(join(installed, 'src/index.ts'))).rejects.toThrow(/ENOENT/);
  });

  it("runs the README worker and the gen-gateway bin: a phoenix client's calls go through NATS", async () => {
    nats = await NatsServer.start();
    await writeFile(join(project, 'worker.mjs'), await readmeWorker());
    const worker = node(['worker.mjs'], { NATS_URL: nats.url });
    const gateway = node(
      ['node_modules/.bin/gen-gateway', '--demo', '--port', '0', '--nats', nats.url],
      {},
    );
    const listening = await until(
      () => {
        const line = gateway
          .out()
          .split('\n')
          .find((l) => l.startsWith('{') && l.includes('"gateway listening"'));
        return line ? (JSON.parse(line) as { port: number }) : undefined;
      },
      () => `"gateway listening" from the installed bin; output: ${gateway.out()}`,
    );

    const socket = await phoenixSocket(listening.port, { user_id: 'ada' });
    sockets.push(socket);
    const { channel, log, join: joined } = await joinedChannel(socket, 'gen_api:lobby');
    expect(joined.status).toBe('ok');
    // The gateway learns the worker's service within a second or so of both being up: ask again
    // while it answers "not there yet".
    let attempt = 0;
    const hello = await until(
      async () => {
        const entries = await exchange(
          channel,
          log,
          'phoenix_gen_api',
          {
            request_id: `h${++attempt}`,
            service: 'greeter',
            request_type: 'hello',
            args: { name: 'Ada' },
          },
          2,
        );
        const response = entries.find(([kind]) => kind === 'on')?.[1] as { success?: boolean };
        return response?.success === true ? entries : undefined;
      },
      () => `greeter.hello through the worker; worker output: ${worker.out()}`,
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(hello).toContainEqual([
      'on',
      resp(`h${attempt}`, { result: { greeting: 'Hello, Ada!', from: 'ada' } }),
    ]);

    const countdown = await exchange(
      channel,
      log,
      'phoenix_gen_api',
      { request_id: 'c1', service: 'greeter', request_type: 'countdown', args: { from: 3 } },
      6,
    );
    const results = countdown
      .filter(([kind]) => kind === 'on')
      .map(([, payload]) => (payload as { result: unknown }).result);
    expect(results.slice(-4)).toEqual([3, 2, 1, null]);
  });

  it('`gen-gateway/worker` loads none of the gateway server dependencies', async () => {
    // A resolve hook (it runs on the loader thread) appends every URL it resolves to a file.
    await writeFile(
      join(project, 'record-imports.mjs'),
      [
        "import { register } from 'node:module';",
        "register('data:text/javascript,' + encodeURIComponent(`",
        "import { appendFileSync } from 'node:fs';",
        'export async function resolve(specifier, context, next) {',
        '  const resolved = await next(specifier, context);',
        "  appendFileSync(process.env.RECORD_TO, resolved.url + '\\\\n');",
        '  return resolved;',
        '}`));',
      ].join('\n'),
    );
    const recordTo = join(dir, 'imports.txt');
    const probe = node(
      [
        '--import',
        './record-imports.mjs',
        '--input-type=module',
        '-e',
        [
          "import { createRequire } from 'node:module';",
          "const worker = await import('gen-gateway/worker');",
          "if (typeof worker.serve !== 'function') throw new Error('no serve export');",
          'const cjs = Object.keys(createRequire(import.meta.url).cache);',
          "console.log('CJS ' + JSON.stringify(cjs));",
        ].join('\n'),
      ],
      { RECORD_TO: recordTo },
    );
    const cjsLine = await until(
      () =>
        probe
          .out()
          .split('\n')
          .find((line) => line.startsWith('CJS ')),
      () => `the probe's module list; output: ${probe.out()}`,
    );
    const urls = [
      ...(await readFile(recordTo, 'utf8')).split('\n').filter(Boolean),
      ...(JSON.parse(cjsLine.slice(4)) as string[]),
    ];
    const loaded = new Set(
      urls.flatMap((url) => {
        const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
        return match ? [match[1]!] : [];
      }),
    );
    // The worker's own dependencies show up, so the recording works...
    expect(loaded).toContain('@nats-io/transport-node');
    expect(loaded).toContain('@nats-io/services');
    // ...and none of the server's.
    expect([...loaded].filter((name) => SERVER_ONLY.includes(name))).toEqual([]);
  });
});
