/**
 * `gen-gateway --processes N`: N gateway processes on one port, each a node of the cluster on a
 * real nats-server. Sockets land on both processes (a `whoami` channel from the config module
 * answers the serving process's pid and node id), a broadcast crosses them, a killed process is
 * restarted with backoff, SIGTERM stops them all, and without NATS the command refuses.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import { CliError, MAX_PROCESSES, parseCli, parseProcesses } from '../../src/cli/args.js';
import { processNodeId, restartDelayMs } from '../../src/cli/processes.js';
import { NatsServer } from '../support/nats.js';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { spawnTs, type Spawned } from '../support/spawn.js';
import { eventually, until } from '../support/wait.js';

const BIN = 'src/cli/gen-gateway.ts';
/** Starting a process under tsx on a loaded 2-core box: generous. */
const START_MS = 60_000;

let nats: NatsServer;
const running: Spawned[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.disconnect();
  for (const proc of running.splice(0)) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
});

afterAll(async () => {
  await nats.dispose();
});

async function configFile(content: string, ext = 'mjs'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gen-gateway-processes-'));
  const path = join(dir, `gateway.${ext}`);
  await writeFile(path, content);
  return path;
}

/** The demo (room:*) plus `whoami`, whose join answers the serving process's pid and node id. */
const WHOAMI_CONFIG = `
let node = null;
export default {
  demo: true,
  setup(gateway) { node = gateway.nodeId; },
  channels: [{
    pattern: 'whoami',
    handler: { join: () => ({ status: 'ok', response: { pid: process.pid, node } }) },
  }],
};
`;

function start(args: string[]): Spawned {
  const proc = spawnTs(BIN, args);
  running.push(proc);
  return proc;
}

/** Every JSON log line the command (primary and processes) printed so far. */
function logLines(proc: Spawned): Record<string, unknown>[] {
  const out = proc.stdout();
  return out
    .slice(0, out.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function linesOf(proc: Spawned, msg: string): Record<string, unknown>[] {
  return logLines(proc).filter((line) => line.msg === msg);
}

/** Until `count` processes logged "gateway listening"; their port (one for all) and pids. */
async function listening(
  proc: Spawned,
  count: number,
  label: string,
): Promise<{ port: number; pids: number[] }> {
  const lines = await until(
    () => {
      const found = linesOf(proc, 'gateway listening');
      return found.length >= count ? found : null;
    },
    () => `${count} "gateway listening" lines (${label}); stdout: ${proc.stdout().slice(-3000)}`,
    START_MS,
  );
  const ports = new Set(lines.map((line) => line.port));
  expect(ports.size).toBe(1);
  return { port: Number(lines[0]!.port), pids: lines.map((line) => Number(line.pid)) };
}

async function connect(port: number, params: Record<string, unknown> = {}): Promise<Socket> {
  const socket = new Socket(`ws://127.0.0.1:${port}/socket`, {
    transport: WebSocket as unknown as TransportConstructor,
    params,
  });
  sockets.push(socket);
  socket.connect();
  await waitFor(() => socket.isConnected(), 'socket open');
  return socket;
}

/** Which process serves `socket`. */
async function whoami(socket: Socket): Promise<{ pid: number; node: string }> {
  const channel = socket.channel('whoami', {});
  const reply = await replyOf(channel.join());
  expect(reply.status).toBe('ok');
  return reply.response as { pid: number; node: string };
}

/** New sockets until one is served by each of `pids` (round robin: a few suffice). */
async function socketsOn(port: number, pids: number[]): Promise<Map<number, Socket>> {
  const found = new Map<number, Socket>();
  for (let i = 0; i < 40 && found.size < pids.length; i++) {
    const socket = await connect(port, { user_id: `u${i}` });
    const { pid } = await whoami(socket);
    if (pids.includes(pid) && !found.has(pid)) found.set(pid, socket);
    else socket.disconnect();
  }
  expect([...found.keys()].sort()).toEqual([...pids].sort());
  return found;
}

async function joinRoom(socket: Socket, name: string): Promise<Channel> {
  const channel = socket.channel('room:lobby', { name });
  const reply = await replyOf(channel.join());
  expect(reply.status).toBe('ok');
  return channel;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('parseProcesses and the node ids', () => {
  it('takes "auto" (the core count, capped) or 1 … 128; each process is <nodeId or host>-<index>', () => {
    expect(parseProcesses('auto', 'x')).toBe(Math.min(availableParallelism(), MAX_PROCESSES));
    expect(parseProcesses('3', 'x')).toBe(3);
    expect(parseProcesses(4, 'x')).toBe(4);
    for (const bad of ['0', '129', '1.5', 'two', -1, 2.5, null])
      expect(() => parseProcesses(bad, '--processes')).toThrow(CliError);
    expect(parseCli(['--processes', '2'], {}).processes).toBe(2);
    expect(processNodeId('edge', 1)).toBe('edge-1');
    expect(processNodeId(undefined, 0)).toBe(`${hostname()}-0`);
    expect([1, 2, 3, 7, 8, 20].map(restartDelayMs)).toEqual([
      500, 1000, 2000, 30_000, 30_000, 30_000,
    ]);
  });
});

describe('gen-gateway --processes', () => {
  it('--processes 2 without NATS (flag or config key) exits 2 with a message; so does a bad count', async () => {
    const flag = start(['--processes', '2', '--port', '0']);
    const key = start(['--config', await configFile('{"processes": 2}', 'json'), '--port', '0']);
    const zero = start(['--processes', '0']);
    const badKey = start(['--config', await configFile('{"processes": "many"}', 'json')]);
    expect(await Promise.all([flag.exited, key.exited, zero.exited, badKey.exited])).toEqual([
      2, 2, 2, 2,
    ]);
    expect(flag.stderr()).toContain('--processes 2 needs NATS: give --nats URL or nats.servers');
    expect(key.stderr()).toContain('--processes 2 needs NATS');
    expect(zero.stderr()).toContain('--processes: must be "auto" or an integer from 1 to 128');
    expect(badKey.stderr()).toContain('"processes" must be "auto" or a positive integer');
  });

  it('two processes share the port as two cluster nodes: sockets land on both, a broadcast crosses them, kill -9 restarts one, SIGTERM stops all', async () => {
    const config = await configFile(WHOAMI_CONFIG);
    const proc = start(['--config', config, '--port', '0', '--processes', '2', '--nats', nats.url]);
    const { port, pids } = await listening(proc, 2, 'first start');
    expect(new Set(pids).size).toBe(2);
    const started = linesOf(proc, 'gateway process started');
    expect(started.map((line) => line.process).sort()).toEqual([0, 1]);

    // Each socket is served by one process; both serve, each with its own node id.
    const onPid = await socketsOn(port, pids);
    const nodes = await Promise.all([...onPid.values()].map(async (s) => (await whoami(s)).node));
    expect(new Set(nodes).size).toBe(2);
    expect(nodes.every((node) => /-[01]$/.test(node))).toBe(true);

    // alice on one process shouts; bob on the other hears it (cluster PubSub over NATS).
    const [aliceSocket, bobSocket] = [onPid.get(pids[0]!)!, onPid.get(pids[1]!)!];
    const alice = await joinRoom(aliceSocket, 'alice');
    const bob = await joinRoom(bobSocket, 'bob');
    const heard: unknown[] = [];
    bob.on('shout', (payload) => heard.push(payload));
    // Bob's process subscribes the topic on NATS as he joins: shout until it is in place.
    let n = 0;
    await until(() => {
      alice.push('shout', { body: `hi ${n++}` });
      return heard.length > 0;
    }, 'a shout from alice (process 0) to reach bob (process 1)');
    expect(heard[0]).toMatchObject({ from: 'alice' });

    // kill -9 of process 1: the primary logs it and starts a new one in its slot.
    const victim = Number(started.find((line) => line.process === 1)!.processPid);
    process.kill(victim, 'SIGKILL');
    const died = await until(
      () => linesOf(proc, 'gateway process died; restarting').find((l) => l.process === 1),
      'the primary to log the death of process 1',
    );
    expect(died).toMatchObject({ processPid: victim, signal: 'SIGKILL', restartInMs: 500 });
    const { pids: after } = await listening(proc, 3, 'after the restart');
    const replacement = after.find((pid) => !pids.includes(pid))!;
    expect(replacement).toBeDefined();
    expect(alive(victim)).toBe(false);
    // The new process serves sockets on the same port.
    const survivor = pids.find((pid) => pid !== victim)!;
    await socketsOn(port, [survivor, replacement]);

    // SIGTERM to the primary stops every process gracefully; it exits 0 once they are gone.
    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(linesOf(proc, 'gateway process stopped').map((line) => line.code)).toEqual([0, 0]);
    expect([survivor, replacement].filter(alive)).toEqual([]);
  });

  it('a process refusing its configuration (exit 2) stops them all: the primary exits 2', async () => {
    const config = await configFile('{"demo": true, "socket": {"maxChannels": -1}}', 'json');
    const proc = start(['--config', config, '--port', '0', '--processes', '2', '--nats', nats.url]);
    expect(await proc.exited).toBe(2);
    expect(proc.stderr()).toContain('invalid socket option');
    expect(linesOf(proc, 'gateway process refused its configuration; stopping all')).not.toEqual(
      [],
    );
  });

  it('a port in use stops them all too (no restart loop): the primary exits 2', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const proc = start([
        '--demo',
        '--port',
        String(port),
        '--processes',
        '2',
        '--nats',
        nats.url,
      ]);
      expect(await proc.exited).toBe(2);
      expect(linesOf(proc, 'gateway failed to start')[0]).toMatchObject({
        err: { code: 'EADDRINUSE' },
      });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  // Four starts in a row (three failing) plus 3.5 s of restart delays: the suite-wide 20 s
  // timeout is too short when the box is loaded, so it gets the same allowance its waits have.
  it(
    'a process that keeps failing at start is restarted with a doubling delay, not in a tight loop; SIGINT stops all',
    async () => {
      const config = await configFile(
        // Process 0 fails in its setup hook every time; process 1 serves.
        `export default { demo: true, processes: 2, setup() {
        if (process.env.GEN_GATEWAY_PROCESS_INDEX === '0') throw new Error('boom');
      } };`,
      );
      const proc = start(['--config', config, '--port', '0', '--nats', nats.url]);
      const deaths = await eventually(
        () => {
          const found = linesOf(proc, 'gateway process died; restarting').filter(
            (line) => line.process === 0,
          );
          expect(found.length).toBeGreaterThanOrEqual(3);
          return found;
        },
        'three deaths of process 0',
        START_MS,
      );
      expect(deaths.slice(0, 3).map((line) => line.restartInMs)).toEqual([500, 1000, 2000]);
      expect(deaths.every((line) => line.code === 1)).toBe(true);
      // SIGINT (a terminal's Ctrl-C) stops them as SIGTERM does, pending restarts included.
      const listening1 = await until(
        () => linesOf(proc, 'gateway listening').find((line) => line.process === 1),
        'process 1 to listen',
        START_MS,
      );
      expect(linesOf(proc, 'gateway listening').map((line) => line.process)).toEqual([1]);
      const serving = Number(listening1.pid);
      proc.kill('SIGINT');
      // 0, or 1 when process 0 happened to be failing again as the stop came.
      expect([0, 1]).toContain(await proc.exited);
      expect(linesOf(proc, 'stopping gateway processes')).toMatchObject([{ signal: 'SIGINT' }]);
      expect(linesOf(proc, 'gateway process stopped')).toContainEqual(
        expect.objectContaining({ process: 1, code: 0 }),
      );
      expect(alive(serving)).toBe(false);
    },
    2 * START_MS,
  );
});
