/**
 * src/bus/nats/discovery.ts against a real nats-server, with hand-made micro-service identities
 * answering $SRV.PING: late answers count, replies to requests count as sightings, and an
 * instance that neither answers pings nor serves traffic leaves within the TTL. Discovery runs on
 * a manual clock and the tests run its rounds themselves (ping()), so the TTL is exact: only the
 * ping's answer window is real time (nats-server and the fake instances answer on their own).
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery } from '../../src/bus/nats/discovery.js';
import { META, PROTOCOL_VERSION } from '../../src/nats/headers.js';
import { NatsServer } from '../support/nats.js';
import { manualClock } from '../support/clock.js';

const encoder = new TextEncoder();

let server: NatsServer;
let nc: NatsConnection;
let workers: NatsConnection;

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
  workers = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc.close();
  await workers.close();
  await server.stop();
});

/** A fake instance answering pings after `delayMs` while `answering()` says so. */
function instance(id: string, delayMs: number, answering: () => boolean): Subscription {
  const identity = JSON.stringify({
    type: 'io.nats.micro.v1.ping_response',
    name: 'svc',
    id,
    version: '1.0.0',
    metadata: {
      [META.protocol]: PROTOCOL_VERSION,
      [META.prefix]: 'disc',
      [META.configVersion]: 'v1',
    },
  });
  // The broadcast ping, and the check on its own subject that discovery makes before admitting it.
  return workers.subscribe('$SRV.>', {
    callback: (_err, msg) => {
      if (msg.subject !== '$SRV.PING' && msg.subject !== `$SRV.PING.svc.${id}`) return;
      if (!answering()) return;
      setTimeout(() => msg.respond(encoder.encode(identity)), delayMs);
    },
  });
}

const ids = (discovery: Discovery) =>
  discovery
    .instances('svc')
    .map((i) => i.id)
    .sort();

describe('Discovery', () => {
  it('keeps an instance that answers after the others, within the ping window', async () => {
    const fast = instance('fast', 0, () => true);
    const slow = instance('slow', 120, () => true);
    await workers.flush();
    const clock = manualClock(1_000);
    const discovery = new Discovery(
      nc,
      'disc',
      { intervalMs: 100, ttlMs: 400, pingWaitMs: 200 },
      pino({ level: 'silent' }),
      clock.now,
    );
    await discovery.ping();
    expect(ids(discovery)).toEqual(['fast', 'slow']);
    // Each round comes after more than the TTL: an instance whose late answer did not count in
    // that round would leave.
    for (let round = 0; round < 3; round++) {
      clock.advance(500);
      await discovery.ping();
      expect(ids(discovery), `round ${round}`).toEqual(['fast', 'slow']);
    }
    fast.unsubscribe();
    slow.unsubscribe();
  });

  it('an instance that stops answering pings but serves traffic stays; one with neither leaves within the TTL', async () => {
    let pinging = true;
    const busy = instance('busy', 0, () => pinging);
    const dead = instance('dead', 0, () => pinging);
    await workers.flush();
    const removed: string[] = [];
    const clock = manualClock(1_000);
    const discovery = new Discovery(
      nc,
      'disc',
      { intervalMs: 100, ttlMs: 400, pingWaitMs: 50 },
      pino({ level: 'silent' }),
      clock.now,
    );
    discovery.on({ removed: (i) => void removed.push(i.id) });
    await discovery.ping();
    expect(ids(discovery)).toEqual(['busy', 'dead']);
    pinging = false;
    // 'busy' answers requests (the bus reports each answer); 'dead' is silent. Rounds every
    // 150 ms of the clock: 'dead' is still there at 300 ms (within the TTL), gone at 450 ms.
    const round = async () => {
      clock.advance(150);
      discovery.alive('busy');
      await discovery.ping();
    };
    await round();
    await round();
    expect(ids(discovery)).toEqual(['busy', 'dead']);
    expect(removed).toEqual([]);
    await round();
    expect(ids(discovery)).toEqual(['busy']);
    expect(removed).toEqual(['dead']);
    await round();
    expect(ids(discovery)).toEqual(['busy']);
    busy.unsubscribe();
    dead.unsubscribe();
  });

  it('alive() for an unknown id changes nothing', () => {
    const discovery = new Discovery(
      nc,
      'disc',
      { intervalMs: 100, ttlMs: 400, pingWaitMs: 50 },
      pino({ level: 'silent' }),
    );
    discovery.alive('nobody');
    expect(discovery.all()).toEqual([]);
  });
});
