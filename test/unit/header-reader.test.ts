/**
 * src/nats/header-reader.ts: headers of received messages parsed once from the raw block. The
 * raw block comes from nats-core internals, so these tests also prove the fast path is taken
 * with the installed nats-core and @nats-io/services (an upgrade that moves them fails here).
 */
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { headers as natsHeaders, MsgHdrsImpl } from '@nats-io/nats-core/internal';
import { Svcm, type ServiceMsg } from '@nats-io/services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawHeaderBlock, readHeaders } from '../../src/nats/header-reader.js';
import { NatsServer } from '../support/nats.js';

const encoder = new TextEncoder();

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc.close();
  await server.stop();
});

/** Publishes with `entries` as headers (or none) and returns the message as received. */
async function roundTrip(entries: [string, string][] | null): Promise<Msg> {
  const sub = nc.subscribe('hdr.test', { max: 1 });
  const h = natsHeaders();
  for (const [name, value] of entries ?? []) h.append(name, value);
  nc.publish('hdr.test', encoder.encode('body'), entries ? { headers: h } : {});
  for await (const msg of sub) return msg;
  throw new Error('no message');
}

describe('readHeaders', () => {
  it('parses the raw block of a received Msg (the fast path) to the values nats-core gives', async () => {
    const entries: [string, string][] = [
      ['Genapi-Request-Id', 'r1'],
      ['Genapi-Roles', '["a","b"]'],
      ['Genapi-User-Id', 'user: with colon'],
      ['Dup', 'first'],
      ['Dup', 'second'],
      ['Spaced', '  padded  '],
    ];
    const msg = await roundTrip(entries);
    expect(rawHeaderBlock(msg)).toBeInstanceOf(Uint8Array);
    const ours = readHeaders(msg);
    for (const name of [
      'Genapi-Request-Id',
      'Genapi-Roles',
      'Genapi-User-Id',
      'Dup',
      'Spaced',
      'Missing',
      'genapi-request-id',
    ]) {
      expect(ours.get(name)).toBe(msg.headers!.get(name));
    }
    expect(ours.get('Dup')).toBe('first');
    expect(ours.get('Spaced')).toBe('padded');
    expect(ours.code).toBe(0);
  });

  it('a message without headers reads as empty', async () => {
    const msg = await roundTrip(null);
    expect(rawHeaderBlock(msg)).toBe('none');
    expect(readHeaders(msg).get('Anything')).toBe('');
  });

  it('reads the status code of the header line as nats-core does', () => {
    const block = 'NATS/1.0 503 No Responders\r\nA: 1\r\n\r\n';
    const raw = { _rdata: encoder.encode(`${block}body`), _msg: { hdr: block.length } };
    const theirs = MsgHdrsImpl.decode(encoder.encode(block));
    expect(readHeaders(raw).code).toBe(theirs.code);
    expect(readHeaders(raw).code).toBe(503);
    expect(readHeaders(raw).get('A')).toBe(theirs.get('A'));
  });

  it('falls back to msg.headers when the internals are not there', () => {
    const h = natsHeaders();
    h.append('X-One', '1');
    const foreign = { headers: h };
    expect(rawHeaderBlock(foreign)).toBeNull();
    expect(readHeaders(foreign).get('X-One')).toBe('1');
    expect(readHeaders({}).get('X-One')).toBe('');
  });

  it('takes the fast path for a ServiceMsg of @nats-io/services (what SDK workers receive)', async () => {
    const seen: { raw: unknown; value: string }[] = [];
    const service = await new Svcm(nc as never).add({ name: 'hdrtest', version: '1.0.0' });
    service.addEndpoint('probe', {
      subject: 'hdr.probe',
      handler: (_err: Error | null, msg: ServiceMsg) => {
        seen.push({ raw: rawHeaderBlock(msg), value: readHeaders(msg).get('Genapi-Request-Id') });
        msg.respond(encoder.encode('ok'));
      },
    });
    const h = natsHeaders();
    h.append('Genapi-Request-Id', 'svc-1');
    await nc.request('hdr.probe', encoder.encode('x'), { timeout: 2000, headers: h });
    await service.stop();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.raw).toBeInstanceOf(Uint8Array);
    expect(seen[0]!.value).toBe('svc-1');
  });
});
