/**
 * src/bus/nats/discovery.ts against a real nats-server, with hand-made micro-service identities
 * answering $SRV.PING: late answers count, replies to requests count as sightings, and an
 * instance that neither answers pings nor serves traffic leaves within the TTL.
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery } from '../../src/bus/nats/discovery.js';
import { META, PROTOCOL_VERSION } from '../../src/nats/headers.js';
import { NatsServer } from '../support/nats.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
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
  return workers.subscribe('$SRV.PING', {
    callback: (_err, msg) => {
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
    const discovery = new Discovery(
      nc,
      'disc',
      { intervalMs: 100, ttlMs: 400, pingWaitMs: 200 },
      pino({ level: 'silent' }),
    );
    await discovery.start();
    expect(ids(discovery)).toEqual(['fast', 'slow']);
    await sleep(800);
    expect(ids(discovery)).toEqual(['fast', 'slow']);
    discovery.stop();
    fast.unsubscribe();
    slow.unsubscribe();
  });

  it('an instance that stops answering pings but serves traffic stays; one with neither leaves within the TTL', async () => {
    let pinging = true;
    const busy = instance('busy', 0, () => pinging);
    const dead = instance('dead', 0, () => pinging);
    await workers.flush();
    const removed: string[] = [];
    const discovery = new Discovery(
      nc,
      'disc',
      { intervalMs: 100, ttlMs: 400, pingWaitMs: 50 },
      pino({ level: 'silent' }),
    );
    discovery.on({ removed: (i) => void removed.push(i.id) });
    await discovery.start();
    expect(ids(discovery)).toEqual(['busy', 'dead']);
    pinging = false;
    // 'busy' answers requests (the bus reports each answer); 'dead' is silent.
    const started = Date.now();
    while (Date.now() - started < 900) {
      discovery.alive('busy');
      await sleep(50);
    }
    expect(ids(discovery)).toEqual(['busy']);
    expect(removed).toEqual(['dead']);
    discovery.stop();
    busy.unsubscribe();
    dead.unsubscribe();
  });

  it('alive() for an unknown id changes nothing', async () => {
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
