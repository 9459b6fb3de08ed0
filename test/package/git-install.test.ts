/**
 * `npm install git+file://<this repository>#<HEAD>` into an empty project, as a user installing
 * from git would: npm clones the commit, installs its dev dependencies, runs `prepare` (the
 * build) and packs it, so the installed package has dist/, its worker entry loads and its bin
 * serves the demo echo. This tests the
 * committed HEAD, not uncommitted changes. It takes about 40 s on a loaded 2-core machine (the
 * dev dependencies come from the npm cache that `npm ci` filled). Skipped, saying why, when this
 * checkout is not a git repository.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/spawn.js';
import { until } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';

/** Clone, dev install, build, pack and install, on a loaded 2-core machine. */
const INSTALL_TIMEOUT_MS = 300_000;

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** HEAD of this checkout, or null when it is not a git repository. */
function headCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

const head = headCommit();
let dir = '';
let gateway: ChildProcess | null = null;

afterAll(async () => {
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
    const exited = new Promise((resolve) => gateway!.once('exit', resolve));
    gateway.kill('SIGKILL');
    await exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(head === null)('npm install from git (skipped: this checkout has no .git)', () => {
  it(
    'builds on install (prepare): the installed bin serves and the worker entry loads',
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'gen-gateway-git-'));
      const project = join(dir, 'app');
      await mkdir(project);
      await writeFile(
        join(project, 'package.json'),
        JSON.stringify({ name: 'app', private: true, type: 'module' }),
      );
      const spec = `git+${pathToFileURL(ROOT).href.replace(/\/$/, '')}#${head}`;
      try {
        await promisify(execFile)(
          npm,
          ['install', '--prefer-offline', '--no-audit', '--no-fund', spec],
          { cwd: project, timeout: INSTALL_TIMEOUT_MS },
        );
      } catch (err) {
        const { stdout, stderr } = err as { stdout?: string; stderr?: string };
        throw new Error(`npm install ${spec} failed:\n${stdout ?? ''}${stderr ?? ''}`, {
          cause: err,
        });
      }

      const installed = join(project, 'node_modules', 'gen-gateway');
      await expect(readFile(join(installed, 'dist/worker/index.js'))).resolves.toBeDefined();
      const worker = execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          "const w = await import('gen-gateway/worker'); console.log(typeof w.serve);",
        ],
        { cwd: project, encoding: 'utf8' },
      );
      expect(worker.trim()).toBe('function');

      gateway = spawn(
        process.execPath,
        ['node_modules/.bin/gen-gateway', '--demo', '--port', '0'],
        {
          cwd: project,
          env: { ...process.env, LOG_LEVEL: 'info', HOST: undefined, PORT: undefined },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      gateway.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      gateway.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const listening = await until(
        () => out.split('\n').find((line) => line.includes('"gateway listening"')),
        () => `"gateway listening" from the git-installed bin; output: ${out}`,
      );
      const port = (JSON.parse(listening) as { port: number }).port;
      const client = await RawClient.connect(
        `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=ada`,
      );
      try {
        await client.join('gen_api:lobby', '1');
        client.send([
          '1',
          '2',
          'gen_api:lobby',
          'phoenix_gen_api',
          { request_id: 'r1', service: 'demo', request_type: 'echo', args: { message: 'hi' } },
        ]);
        const [push] = await client.take(2);
        expect((push as unknown[])[4]).toMatchObject({ success: true, result: { message: 'hi' } });
      } finally {
        client.close();
      }
    },
    INSTALL_TIMEOUT_MS,
  );
});
