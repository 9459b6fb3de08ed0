/**
 * A throwing Presence `fetch` must not take the gateway down (issue 12, point 4): diffs go out
 * from a socket's teardown, where an exception used to escape WebSocketConnection.onClose. The
 * diff goes out without the fetched fields, with a process warning; the gateway keeps serving.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway, type PresenceState } from '../../src/index.js';
import { presenceChannel } from '../support/test-app.js';
import { RawClient } from '../support/ws-client.js';
import { until } from '../support/wait.js';

describe('a Presence fetch that throws', () => {
  let gateway: Gateway;
  let url: string;
  const warnings: string[] = [];
  const onWarning = (warning: Error) => {
    if (warning.name === 'PresenceWarning') warnings.push(warning.message);
  };

  beforeAll(async () => {
    process.on('warning', onWarning);
    gateway = createGateway({
      logger: false,
      presence: {
        // Adds a field, and fails for the key "bad".
        fetch: (_topic, state: PresenceState) => {
          if ('bad' in state) throw new Error('no record for bad');
          const out: PresenceState = {};
          for (const [key, entry] of Object.entries(state)) out[key] = { ...entry, fetched: true };
          return out;
        },
      },
    });
    gateway.socket('/socket').channel('presence:*', presenceChannel(gateway));
    const address: AddressInfo = await gateway.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${address.port}/socket/websocket?vsn=2.0.0`;
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    await gateway.close();
  });

  it('the join and the teardown diffs of the failing key go out without fetched fields; the gateway keeps serving', async () => {
    const watcher = await RawClient.connect(url);
    watcher.send(['1', '1', 'presence:room', 'phx_join', { key: 'watcher' }]);
    const [reply, state, ownDiff] = (await watcher.take(3)) as unknown[][];
    expect(reply![3]).toBe('phx_reply');
    expect(state!.slice(3)).toEqual(['presence_state', {}]);
    expect(ownDiff![3]).toBe('presence_diff');
    expect(ownDiff![4]).toMatchObject({ joins: { watcher: { fetched: true } } });

    const bad = await RawClient.connect(url);
    bad.send(['1', '1', 'presence:room', 'phx_join', { key: 'bad' }]);
    const joined = (await watcher.next()) as unknown[];
    expect(joined[3]).toBe('presence_diff');
    expect(joined[4]).toEqual({
      joins: { bad: { metas: [expect.objectContaining({ online_at: 1 }) as unknown] } },
      leaves: {},
    });

    // The socket's close runs the teardown diff through fetch: it throws there too.
    bad.ws.terminate();
    const left = (await watcher.next()) as unknown[];
    expect(left[4]).toEqual({
      joins: {},
      leaves: { bad: { metas: [expect.objectContaining({ online_at: 1 }) as unknown] } },
    });
    await until(() => warnings.length >= 2, 'the two fetch warnings');
    expect(warnings[0]).toContain('presence fetch threw for presence:room');

    // Still serving.
    expect(await watcher.request([null, 'hb', 'phoenix', 'heartbeat', {}])).toEqual([
      null,
      'hb',
      'phoenix',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    watcher.close();
    await watcher.closed;
  });
});
