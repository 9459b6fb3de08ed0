/**
 * scripts/healthcheck.mjs, the container health checks of the Dockerfile (`gateway /healthz`)
 * and docker-compose.yml (`gateway /readyz`, `worker`), run as Docker runs them against the
 * built gateway and demo worker: healthy while they serve, unhealthy once they are gone.
 * (On the host every process shares one network namespace; the worker check counts the
 * connections to this test's own NATS port, which only the worker holds.)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '../support/nats.js';
import { ROOT } from '../support/spawn.js';
import { until } from '../support/wait.js';

const BUILD_TIMEOUT_MS = 240_000;
const HEALTHCHECK = join(ROOT, 'scripts/healthcheck.mjs');

const procs: ChildProcess[] = [];
let nats: NatsServer | null = null;

beforeAll(async () => {
  await promisify(execFile)('npm', ['run', '--silent', 'build'], {
    cwd: ROOT,
    timeout: BUILD_TIMEOUT_MS,
  });
}, BUILD_TIMEOUT_MS + 10_000);

afterEach(async () => {
  for (const child of procs.splice(0)) await stop(child);
  await nats?.dispose();
  nats = null;
});

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** Starts `node <entry> ...args` from the repository and resolves with the first log line `msg`. */
async function start(
  entry: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  msg: string,
): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', HOST: undefined, PORT: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(child);
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const line = await until(
    () => {
      const found = out.split('\n').find((l) => l.startsWith('{') && l.includes(`"${msg}"`));
      return found ? (JSON.parse(found) as Record<string, unknown>) : undefined;
    },
    () => `"${msg}" from ${entry}; output: ${out}`,
  );
  return { child, line };
}

/** The exit code of `node scripts/healthcheck.mjs ...args` with `env`. */
async function healthcheck(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(process.execPath, [HEALTHCHECK, ...args], {
    env: { ...process.env, ...env },
    stdio: 'ignore',
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
}

describe('scripts/healthcheck.mjs', () => {
  it('the Dockerfile and the compose file run it with the arguments tested here', async () => {
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain('CMD ["node", "scripts/healthcheck.mjs", "gateway", "/healthz"]');
    expect(dockerfile).toContain('COPY scripts/healthcheck.mjs ./scripts/healthcheck.mjs');
    const compose = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');
    expect(compose).toContain("['CMD', 'node', 'scripts/healthcheck.mjs', 'gateway', '/readyz']");
    expect(compose).toContain("['CMD', 'node', 'scripts/healthcheck.mjs', 'worker']");
    expect(compose.match(/^ +condition: service_healthy$/gm)).toHaveLength(2);
  });

  it('gateway: 0 while /healthz and /readyz answer 200, 1 once the gateway is gone', async () => {
    const { child, line } = await start(
      'dist/cli/gen-gateway.js',
      ['--demo', '--port', '0'],
      {},
      'gateway listening',
    );
    const env = { PORT: String(line.port) };
    expect(await healthcheck(['gateway', '/healthz'], env)).toBe(0);
    expect(await healthcheck(['gateway', '/readyz'], env)).toBe(0);
    expect(await healthcheck(['gateway', '/no-such-path'], env)).toBe(1);
    await stop(child);
    expect(await healthcheck(['gateway', '/healthz'], env)).toBe(1);
  });

  it('worker: 1 before the worker connects, 0 while it is connected to NATS, 1 after', async () => {
    nats = await NatsServer.start();
    const env = { NATS_URL: nats.url };
    expect(await healthcheck(['worker'], env)).toBe(1);
    const { child } = await start('dist/demo/worker.js', [], env, 'demo worker ready');
    expect(await healthcheck(['worker'], env)).toBe(0);
    await stop(child);
    expect(await healthcheck(['worker'], env)).toBe(1);
  });

  it('says how to call it when the role is unknown', async () => {
    expect(await healthcheck(['database'], {})).toBe(2);
  });
});
