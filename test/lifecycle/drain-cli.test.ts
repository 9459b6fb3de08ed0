/**
 * Graceful drain through the built command (`node dist/cli/gen-gateway.js --demo`, what
 * `npm start` runs), with the real phoenix client: the issue 14 demo contract (a `slow {ms: 800}`
 * request in flight when SIGTERM arrives gets its result before the socket closes with 1012, and
 * the process exits 0), readiness and new connections while it drains, and the second signal.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STOPPING_REFUSAL } from '../../src/http/responses.js';
import { until, within } from '../support/wait.js';
import {
  build,
  genApiCall,
  get,
  killAll,
  node,
  npmStart,
  roamingSocket,
  roundTrip,
} from './support.js';
import { joinedChannel } from '../support/genapi-phoenix.js';
import { RawClient } from '../support/ws-client.js';

const CLI = 'dist/cli/gen-gateway.js';

beforeAll(build, 240_000);
afterEach(killAll);

async function demoGateway(): Promise<{ proc: ReturnType<typeof node>; port: number }> {
  const proc = node(CLI, ['--demo', '--port', '0']);
  const port = (await proc.logLine('gateway listening')).port as number;
  return { proc, port };
}

describe('gen-gateway drains on SIGTERM', () => {
  it('a slow request in flight gets its result, then the socket closes with 1012 and the process exits 0', async () => {
    const { proc, port } = await demoGateway();
    const { socket, closes } = roamingSocket([port], { user_id: 'ada' });
    socket.connect();
    const { channel, join } = await joinedChannel(socket, 'gen_api:lobby');
    expect(join.status).toBe('ok');
    const events: string[] = [];
    socket.onClose(() => events.push('closed'));
    const result = genApiCall(channel, 'slow-1', 'slow', { ms: 800 }).then((response) => {
      events.push('result');
      return response;
    });
    await roundTrip(socket); // the request is in the gateway's hands
    proc.child.kill('SIGTERM');

    // While it drains: not ready, new connections refused with a reason, this socket still served.
    const ready = await until(async () => {
      const probe = await get(port, '/readyz');
      return probe.status === 503 ? probe : undefined;
    }, 'readyz 503 while draining');
    expect(ready.body).toEqual({ status: 'not_ready', reasons: ['draining'] });
    const refused = await RawClient.handshake(
      `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=bob`,
    );
    expect([refused.status, refused.body]).toEqual([503, STOPPING_REFUSAL]);
    const longpoll = await get(port, '/socket/longpoll?vsn=2.0.0&user_id=bob');
    expect(longpoll).toEqual({ status: 503, body: STOPPING_REFUSAL });
    await roundTrip(socket);

    expect(await within(result, 'the slow result')).toMatchObject({
      request_id: 'slow-1',
      success: true,
      result: { slept: 800 },
    });
    expect(await within(proc.exited, 'the process to exit')).toBe(0);
    await until(() => closes.length > 0, 'the socket to close');
    socket.disconnect();
    expect(closes[0]).toBe(1012);
    expect(events.slice(0, 2)).toEqual(['result', 'closed']);
    expect(proc.output()).toContain('"msg":"drain: sockets closed"');
  });

  it('a second signal exits at once with code 1', async () => {
    const { proc, port } = await demoGateway();
    const { socket } = roamingSocket([port], { user_id: 'ada' });
    socket.connect();
    const { channel } = await joinedChannel(socket, 'gen_api:lobby');
    genApiCall(channel, 'slow-2', 'slow', { ms: 900 }).catch(() => undefined);
    await roundTrip(socket);
    proc.child.kill('SIGTERM');
    await proc.logLine('draining: refusing new connections, waiting for in-flight requests');
    proc.child.kill('SIGTERM');
    expect(await within(proc.exited, 'the process to exit')).toBe(1);
    expect(proc.output()).toContain('second signal, exiting at once');
    expect(proc.output()).not.toContain('"msg":"gateway closed"');
    socket.disconnect();
  });

  it('through `npm start`: SIGTERM to npm reaches the gateway, which drains, and npm exits 0', async () => {
    // npm forwards the signal to its script's shell; the script must `exec` the CLI, or the
    // shell swallows it and the gateway is orphaned while npm exits 143.
    const proc = npmStart(['--port', '0']);
    const port = (await proc.logLine('gateway listening', 60_000)).port as number;
    const { socket, closes } = roamingSocket([port], { user_id: 'ada' });
    socket.connect();
    const { channel } = await joinedChannel(socket, 'gen_api:lobby');
    const result = genApiCall(channel, 'slow-3', 'slow', { ms: 800 });
    await roundTrip(socket);
    proc.child.kill('SIGTERM');
    expect(await within(result, 'the slow result')).toMatchObject({ success: true });
    expect(await within(proc.exited, 'npm to exit')).toBe(0);
    await until(() => closes.length > 0, 'the socket to close');
    socket.disconnect();
    expect(closes[0]).toBe(1012);
    expect(proc.output()).toContain('"msg":"gateway closed"');
  });

  it('an idle gateway drains at once and exits 0 (SIGINT too)', async () => {
    const { proc } = await demoGateway();
    proc.child.kill('SIGINT');
    expect(await within(proc.exited, 'the process to exit')).toBe(0);
    expect(proc.output()).toContain('"msg":"gateway closed"');
  });
});
