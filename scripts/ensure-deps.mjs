// Runs before `npm start` and `npm test`: installs dependencies when node_modules is missing or
// older than package-lock.json, so the README's two commands work on a fresh clone.
import { existsSync, lstatSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const marker = `${root}node_modules/.package-lock.json`;
const lock = `${root}package-lock.json`;

// A linked node_modules (a git worktree sharing another checkout's) belongs to that checkout:
// `npm ci` here would empty it through the link for every checkout that shares it.
const linked =
  existsSync(`${root}node_modules`) && lstatSync(`${root}node_modules`).isSymbolicLink();
const stale =
  !linked &&
  (!existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs));
if (stale) {
  process.stderr.write('gen-gateway: installing dependencies (npm ci)...\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
