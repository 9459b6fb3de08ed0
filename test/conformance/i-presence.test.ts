/**
 * Protocol spec §8 I (cases 81–84): presence_state / presence_diff on the wire.
 * (Case 85, the JS Presence helper, runs in test/e2e.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/phoenix-client.js';
import { RawClient } from '../support/ws-client.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

let app: TestApp;
const clients: RawClient[] = [];
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

async function connect(): Promise<RawClient> {
  const client = await RawClient.connect(app.wsUrl());
  clients.push(client);
  return client;
}

const REF: unknown = expect.stringMatching(/^[A-Za-z0-9_-]{16}$/);

describe('§I presence', () => {
  it('81–84: join, second join, update and leave produce the exact frames', async () => {
    const a = await connect();
    a.send(['1', '1', 'presence:lobby', 'phx_join', { key: 'alice' }]);
    const [aReply, aState, aDiff] = await a.take(3);
    expect(aReply).toEqual([
      '1',
      '1',
      'presence:lobby',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    expect(aState).toEqual(['1', null, 'presence:lobby', 'presence_state', {}]);
    expect(aDiff).toEqual([
      null,
      null,
      'presence:lobby',
      'presence_diff',
      { joins: { alice: { metas: [{ online_at: 1, phx_ref: REF }] } }, leaves: {} },
    ]);
    const r1 = ((aDiff as unknown[])[4] as { joins: { alice: { metas: { phx_ref: string }[] } } })
      .joins.alice.metas[0]!.phx_ref;

    const b = await connect();
    b.send(['7', '7', 'presence:lobby', 'phx_join', { key: 'bob' }]);
    const [bReply, bState, bDiff] = await b.take(3);
    expect(bReply).toEqual([
      '7',
      '7',
      'presence:lobby',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    expect(bState).toEqual([
      '7',
      null,
      'presence:lobby',
      'presence_state',
      { alice: { metas: [{ online_at: 1, phx_ref: r1 }] } },
    ]);
    expect(bDiff).toEqual([
      null,
      null,
      'presence:lobby',
      'presence_diff',
      { joins: { bob: { metas: [{ online_at: 1, phx_ref: REF }] } }, leaves: {} },
    ]);
    expect(await a.next()).toEqual(bDiff);
    const r2 = ((bDiff as unknown[])[4] as { joins: { bob: { metas: { phx_ref: string }[] } } })
      .joins.bob.metas[0]!.phx_ref;
    expect(r2).not.toBe(r1);

    b.send(['7', '8', 'presence:lobby', 'update', { meta: { status: 'away' } }]);
    const [update, updateReply] = await b.take(2);
    expect(updateReply).toEqual([
      '7',
      '8',
      'presence:lobby',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    const diff = (update as unknown[])[4] as { joins: { bob: { metas: { phx_ref: string }[] } } };
    const r3 = diff.joins.bob.metas[0]!.phx_ref;
    expect(update).toEqual([
      null,
      null,
      'presence:lobby',
      'presence_diff',
      {
        joins: { bob: { metas: [{ status: 'away', phx_ref: r3, phx_ref_prev: r2 }] } },
        leaves: { bob: { metas: [{ online_at: 1, phx_ref: r2 }] } },
      },
    ]);
    expect(await a.next()).toEqual(update);

    b.send(['7', '9', 'presence:lobby', 'phx_leave', {}]);
    expect(await a.next()).toEqual([
      null,
      null,
      'presence:lobby',
      'presence_diff',
      {
        joins: {},
        leaves: { bob: { metas: [{ status: 'away', phx_ref: r3, phx_ref_prev: r2 }] } },
      },
    ]);
    expect(app.gateway.presence.list('presence:lobby')).toEqual({
      alice: { metas: [{ online_at: 1, phx_ref: r1 }] },
    });
  });

  it('a disconnect untracks like a leave; a key tracked twice has two metas', async () => {
    const a = await connect();
    const b = await connect();
    const c = await connect();
    await a.join('presence:room2', '1', { key: 'carol' });
    await a.take(2);
    await b.join('presence:room2', '2', { key: 'carol', meta: { device: 'phone' } });
    const state = (await b.take(2))[0] as unknown[];
    expect(Object.keys(state[4] as object)).toEqual(['carol']);
    await a.next();
    await c.join('presence:room2', '3', { key: 'dave' });
    const cState = (await c.take(2))[0] as unknown[];
    expect((cState[4] as { carol: { metas: unknown[] } }).carol.metas).toHaveLength(2);
    await a.next();
    await b.next();
    b.close();
    const leave = (await c.next()) as unknown[];
    expect(leave[3]).toBe('presence_diff');
    expect(leave[4]).toEqual({
      joins: {},
      leaves: { carol: { metas: [{ device: 'phone', phx_ref: REF }] } },
    });
    expect(app.gateway.presence.get('presence:room2', 'carol')?.metas).toHaveLength(1);
  });

  it('gateway.presence.onLocalChange streams the changes behind the wire diffs, with the same phx_refs (replication boundary)', async () => {
    const changes: unknown[] = [];
    // (Earlier tests' sockets may still be closing: only this topic counts.)
    const stop = app.gateway.presence.onLocalChange((change) => {
      if (change.topic === 'presence:stream') changes.push(change);
    });
    try {
      const a = await connect();
      a.send(['1', '1', 'presence:stream', 'phx_join', { key: 'ann' }]);
      const diff = ((await a.take(3))[2] as unknown[])[4] as {
        joins: { ann: { metas: { phx_ref: string }[] } };
      };
      const r1 = diff.joins.ann.metas[0]!.phx_ref;
      a.send(['1', '2', 'presence:stream', 'update', { meta: { status: 'away' } }]);
      const update = ((await a.take(2))[0] as unknown[])[4] as {
        joins: { ann: { metas: { phx_ref: string }[] } };
      };
      const r2 = update.joins.ann.metas[0]!.phx_ref;
      a.close(); // the channel ends with the connection
      await waitFor(() => changes.length === 3, 'the leave');
      const node = app.gateway.nodeId;
      expect(changes).toEqual([
        {
          kind: 'join',
          node,
          topic: 'presence:stream',
          key: 'ann',
          ref: r1,
          meta: { online_at: 1 },
        },
        {
          kind: 'update',
          node,
          topic: 'presence:stream',
          key: 'ann',
          ref: r2,
          prevRef: r1,
          meta: { status: 'away' },
          prevMeta: { online_at: 1 },
        },
        {
          kind: 'leave',
          node,
          topic: 'presence:stream',
          key: 'ann',
          ref: r2,
          meta: { status: 'away' },
        },
      ]);
    } finally {
      stop();
    }
  });

  it('keys may be any string, including __proto__', async () => {
    const a = await connect();
    await a.join('presence:proto', '1', { key: '__proto__' });
    const [state, diff] = await a.take(2);
    expect(state).toEqual(['1', null, 'presence:proto', 'presence_state', {}]);
    const joins = ((diff as unknown[])[4] as { joins: object }).joins;
    expect(Object.prototype.hasOwnProperty.call(joins, '__proto__')).toBe(true);
    expect(a.texts.at(-1)).toContain('"__proto__":{"metas":[{"online_at":1,"phx_ref":"');
  });
});
