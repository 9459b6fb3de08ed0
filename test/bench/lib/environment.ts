/** Where and how a benchmark run was produced (the BENCHMARKS.md header). */
import { execFileSync } from 'node:child_process';
import { arch, availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';

export interface Environment {
  date: string;
  node: string;
  v8: string;
  cpu: string;
  cores: number;
  os: string;
  memory: string;
  /** Load average when the run started: other work on the machine makes numbers noisier. */
  load: string;
  commit: string;
  command: string;
}

function git(args: string[], cwd: string): string | null {
  try {
    return execFileSync('git', args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

export function describeEnvironment(root: string, argv: readonly string[]): Environment {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const head = git(['rev-parse', '--short', 'HEAD'], root);
  const dirty = git(['status', '--porcelain', '--untracked-files=no'], root);
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    node: process.version,
    v8: process.versions.v8,
    cpu,
    cores: availableParallelism(),
    os: `${type()} ${release()} ${arch()}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    load: loadavg()
      .map((value) => value.toFixed(2))
      .join(' / '),
    commit: head === null ? 'unknown' : `${head}${dirty ? ' (with uncommitted changes)' : ''}`,
    command: ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' '),
  };
}
