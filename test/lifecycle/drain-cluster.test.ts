/**
 * A drain in a cluster: two gateways on one real nats-server. A phoenix client given both
 * gateways is on the first when it drains: it sees 1012, reconnects to the second and rejoins;
 * an observer on the second sees the client's presence entry leave (the drained node's entries
 * leave the cluster) and come back from the second gateway.
 */
import { pino } from 'pino';
import type { Channel } from 'phoenix';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notReady } from '../../src/admin/probes.js';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { NatsServer } from '../support/nats.js';
import { until, within } from '../support/wait.js';
import { get, roamingSocket } from './support.js';

interface Diff {
  joins: Record<string, { metas: { phx_ref: string }[] }>;
  leaves: Record<string, { metas: { phx_ref: string }[] }>;
}

let nats: NatsServer;
const gateways: RunningGateway[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const running of gateways) await running.gateway.close();
  await nats.dispose();
});

async function gateway(nodeId: string): Promise<RunningGateway> {
  const running = await startGateway({
    config: {
      demo: true,
      nodeId,
      nats: { servers: nats.url },
      drain: { requestDeadlineMs: 1_000 },
    },
    fromFile: false,
    port: 0,
    logger: pino({ level: 'silent' }),
  });
  gateways.push(running);
  await running.natsConnected;
  return running;
}

/** Every presence_diff the channel gets, and the presence_state it joined with. */
function recordPresence(channel: Channel): { diffs: Diff[]; state: Record<string, unknown>[] } {
  const diffs: Diff[] = [];
  const state: Record<string, unknown>[] = [];
  channel.on('presence_diff', (payload) => diffs.push(payload as Diff));
  channel.on('presence_state', (payload) => state.push(payload as Record<string, unknown>));
  return { diffs, state };
}

describe('drain with two gateways on one NATS', () => {
  it('clients reconnect to the other gateway and the drained node’s presence leaves the cluster', async () => {
    const a = await gateway('node-a');
    const b = await gateway('node-b');
    const aPort = a.address.port;
    const bPort = b.address.port;

    const observer = roamingSocket([bPort], { user_id: 'olga' });
    observer.socket.connect();
    const lobby = observer.socket.channel('room:lobby', { name: 'olga' });
    const seen = recordPresence(lobby);
    lobby.join();

    const roaming = roamingSocket([aPort, bPort], { user_id: 'xavier' });
    roaming.socket.connect();
    const room = roaming.socket.channel('room:lobby', { name: 'xavier' });
    const joinedRooms: number[] = [];
    room.on('presence_state', () => joinedRooms.push(roaming.connects.at(-1)!));
    room.join();

    const joinFromA = await until(
      () => seen.diffs.find((diff) => diff.joins.xavier !== undefined),
      "the observer on B to see xavier's join on A",
    );
    const refOnA = joinFromA.joins.xavier!.metas[0]!.phx_ref;

    const drained = a.gateway.drain();
    expect(notReady(a.gateway, a.genApi)).toEqual(['draining']);
    await within(drained, 'the drain of A');

    await until(() => roaming.closes.length > 0, 'the client to see its socket close');
    expect(roaming.closes[0]).toBe(1012);
    const leave = await until(
      () =>
        seen.diffs.find((diff) =>
          diff.leaves.xavier?.metas.some((meta) => meta.phx_ref === refOnA),
        ),
      "the observer to see xavier's entry from A leave",
    );
    expect(leave).toBeDefined();
    // A said goodbye: B dropped it as departed, not after downAfterMs of silence.
    await until(
      () => b.gateway.clusterHealth()?.presence.departed === 1,
      'B to drop A on its goodbye',
    );
    expect(b.gateway.clusterHealth()?.presence).toMatchObject({ nodes: 0, entries: 0, expired: 0 });
    // Back, through the second gateway: rejoined there, and tracked again from there.
    await until(() => joinedRooms.includes(bPort), 'the client to rejoin on B');
    expect(roaming.connects.slice(0, 2)).toEqual([aPort, bPort]);
    await until(
      () =>
        seen.diffs.some((diff) => diff.joins.xavier?.metas.some((meta) => meta.phx_ref !== refOnA)),
      "the observer to see xavier's join on B",
    );
    expect((await get(bPort, '/readyz')).status).toBe(200);
    roaming.socket.disconnect();
    observer.socket.disconnect();
  });
});
