/**
 * .ci/run on a fresh machine: package installs go through sudo when the script is not root and
 * sudo exists, and run directly otherwise. The script runs for real, in a copy of .ci/ whose PATH
 * holds only stubs (node, npm, id, sudo, apt-get) that log their arguments, so nothing is installed.
 */
import { execFile } from 'node:child_process';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from '../support/spawn.js';

const run = promisify(execFile);
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Real tools the script needs besides the stubs (looked up once, by absolute path). */
const REAL_TOOLS = ['dirname', 'env'];

async function which(tool: string): Promise<string> {
  const { stdout } = await run('/bin/sh', ['-c', `command -v ${tool}`]);
  return stdout.trim();
}

/**
 * Runs a copy of .ci/run as user `uid` (what the `id` stub reports), with or without a `sudo`
 * stub on PATH, and returns the logged commands, one per line.
 */
async function ciRun(uid: number, withSudo: boolean): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ci-run-'));
  dirs.push(dir);
  const bin = join(dir, 'bin');
  const log = join(dir, 'calls.log');
  await mkdir(join(dir, 'repo', '.ci'), { recursive: true });
  await mkdir(bin);
  await copyFile(join(ROOT, '.ci/run'), join(dir, 'repo/.ci/run'));
  for (const tool of REAL_TOOLS) await symlink(await which(tool), join(bin, tool));
  const stub = async (path: string, body: string) => {
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
  };
  const logArgs = (name: string) => `echo "${name} $*" >> "${log}"`;
  await stub(
    join(dir, 'repo/.ci/install-nats-server'),
    `echo "install-nats-server DEBIAN_MIRROR=$DEBIAN_MIRROR" >> "${log}"`,
  );
  await stub(join(bin, 'node'), 'echo 20');
  await stub(join(bin, 'npm'), logArgs('npm'));
  await stub(join(bin, 'apt-get'), logArgs('apt-get'));
  await stub(join(bin, 'id'), `echo ${uid}`);
  // Like sudo: log, then run the command (as "root").
  if (withSudo) await stub(join(bin, 'sudo'), `${logArgs('sudo')}\nexec "$@"`);
  await run('/bin/bash', [join(dir, 'repo/.ci/run')], {
    env: { PATH: bin, DEBIAN_MIRROR: 'http://mirror.example/debian' },
  });
  return (await readFile(log, 'utf8')).trim().split('\n');
}

describe('.ci/run', () => {
  it('not root, sudo present: the nats-server installer and apt-get run through sudo; npm does not', async () => {
    expect(await ciRun(1000, true)).toEqual([
      'sudo env DEBIAN_MIRROR=http://mirror.example/debian .ci/install-nats-server',
      'install-nats-server DEBIAN_MIRROR=http://mirror.example/debian',
      'sudo apt-get update -qq',
      'apt-get update -qq',
      'sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium',
      'apt-get install -y -qq chromium',
      'npm ci --no-audit --no-fund',
      'npm run lint',
      'npm run api',
      'npm test',
    ]);
  });

  it('root: no sudo, even when it exists', async () => {
    expect(await ciRun(0, true)).toEqual([
      'install-nats-server DEBIAN_MIRROR=http://mirror.example/debian',
      'apt-get update -qq',
      'apt-get install -y -qq chromium',
      'npm ci --no-audit --no-fund',
      'npm run lint',
      'npm run api',
      'npm test',
    ]);
  });

  it('not root and no sudo: the commands run as they are (and fail with their own message if they must)', async () => {
    expect(await ciRun(1000, false)).toEqual([
      'install-nats-server DEBIAN_MIRROR=http://mirror.example/debian',
      'apt-get update -qq',
      'apt-get install -y -qq chromium',
      'npm ci --no-audit --no-fund',
      'npm run lint',
      'npm run api',
      'npm test',
    ]);
  });
});
