/**
 * The proof that protocol/nats.md is enough to write a worker: the service `raw` is implemented
 * below with ONLY the plain NATS client (`connect` from @nats-io/transport-node, `headers` from
 * @nats-io/nats-core) and what protocol/nats.md (and its schemas/vectors) says — nothing from
 * src/worker or src/nats. Clients call it with raw Phoenix frames through real gateways on a
 * real nats-server.
 *
 * It answers `$SRV.PING` (and `$SRV.INFO`, `$SRV.STATS`, ADR-32) with the genapi metadata, serves
 * its functions on the queue-group subjects and on its own `<p>.inst.<service>.<id>.>` subjects, replies
 * errors with the Nats-Service-Error headers, pushes its PushConfig on start (the PushAcks are
 * checked against push-ack.schema.json), answers config pulls, and streams with the credit
 * protocol (§7), checking that the gateway never lets it have more than `credit` chunks
 * outstanding, and stops on `cancel`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import {
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/nats-core';
import { NatsServer } from '../support/nats.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import { until } from '../support/wait.js';
import { setTimeout as pause } from 'node:timers/promises';
import { ApiClient, response, streamChunks } from '../support/genapi-client.js';
import { RawClient } from '../support/ws-client.js';
import { conforms } from '../support/protocol.js';

// ---------------------------------------------------------------------------------------------
// Schemas (protocol/schemas)
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// The raw worker (protocol/nats.md only)
// ---------------------------------------------------------------------------------------------
const PREFIX = 'genapi';
const SERVICE = 'raw';
const QUEUE = 'genapi';
const enc = new TextEncoder();
const dec = new TextDecoder();
const json = (value: unknown) => enc.encode(JSON.stringify(value));

interface Seen {
  subject: string;
  requestType: string;
  headers: Record<string, string>;
  body: unknown;
  at: number;
}

interface RawStream {
  id: string;
  requestId: string;
  dataSubject: string;
  initialCredit: number;
  /** Chunks the worker may still send. */
  allowance: number;
  sent: number;
  grants: string[];
  /** Highest (sent − granted after the initial credit) seen: the chunks outstanding. */
  maxOutstanding: number;
  /** Grants that would have let the worker hold more than the initial credit. */
  violations: string[];
  waits: number;
  cancelledAt: number | null;
  wake: (() => void) | null;
  ended: boolean;
  /** The loop that sends the stream's messages has returned (ended, failed or cancelled). */
  exited: boolean;
}

const FUN_CONFIGS = [
  {
    service: SERVICE,
    request_type: 'hello',
    version: null,
    response_type: 'sync',
    timeout: 2000,
    arg_types: { name: 'string', times: { type: 'num', default_value: 1 } },
    check_permission: false,
    permission_callback: false,
    retry: null,
  },
  {
    service: SERVICE,
    request_type: 'greet',
    version: '2.0.0',
    response_type: 'sync',
    timeout: 2000,
    arg_types: { name: 'string' },
  },
  { service: SERVICE, request_type: 'when', response_type: 'sync', arg_types: { at: 'datetime' } },
  { service: SERVICE, request_type: 'fail', response_type: 'sync', arg_types: {} },
  { service: SERVICE, request_type: 'verbatim', response_type: 'sync', arg_types: {} },
  { service: SERVICE, request_type: 'broken', response_type: 'sync', arg_types: {} },
  { service: SERVICE, request_type: 'busy', response_type: 'sync', arg_types: {} },
  { service: SERVICE, request_type: 'later', response_type: 'async', arg_types: { n: 'num' } },
  { service: SERVICE, request_type: 'note', response_type: 'none', arg_types: { text: 'string' } },
  {
    service: SERVICE,
    request_type: 'ticks',
    response_type: 'stream',
    timeout: 5000,
    arg_types: {
      n: 'num',
      interval_ms: { type: 'num', default_value: 0 },
      last: { type: 'boolean', default_value: false },
      fail_at: { type: 'num', default_value: 0 },
    },
  },
];

/**
 * A result as a worker in another language might write it: spaces, `1.50`, an escape; long enough
 * (≥ RAW_JSON_MIN_LENGTH) to pass through unparsed.
 */
const PADDING = 'p'.repeat(300);
const VERBATIM = `{ "n" : 1.50, "s" : "\\u00e9", "list" : [ true , null ], "pad" : "${PADDING}" }`;

function headerRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const key of h.keys()) out[key] = h.get(key);
  return out;
}

class RawWorker {
  readonly seen: Seen[] = [];
  readonly pulls: string[] = [];
  readonly streams = new Map<string, RawStream>();
  readonly notes: string[] = [];
  pings = 0;
  acks: unknown[] = [];
  private readonly started = new Date().toISOString();

  private constructor(
    readonly nc: NatsConnection,
    /** A subject token (it appears in <p>.inst.<service>.<id> and <p>.ctl.<service>.<id>). */
    readonly id: string,
    readonly configVersion: string,
  ) {}

  static async start(url: string): Promise<RawWorker> {
    const nc = await connect({ servers: url, name: 'raw worker' });
    const id = `RAW${Math.random().toString(36).slice(2, 12).toUpperCase()}`;
    const worker = new RawWorker(nc, id, 'raw-v1');
    worker.subscribe();
    await nc.flush();
    worker.acks = await worker.push();
    return worker;
  }

  private get metadata() {
    return {
      genapi_protocol: '1',
      genapi_prefix: PREFIX,
      genapi_config_version: this.configVersion,
    };
  }

  private identity(type: string) {
    return { type, name: SERVICE, id: this.id, version: '1.0.0', metadata: this.metadata };
  }

  /** §4: the PushConfig (body of pushes and of pull answers). */
  pushConfig() {
    return {
      service: SERVICE,
      config_version: this.configVersion,
      instance_id: this.id,
      service_version: '1.0.0',
      fun_configs: FUN_CONFIGS,
    };
  }

  private fnSubject(rt: string, version: string | null): string {
    return `${PREFIX}.fn.${SERVICE}.${rt}${version === null ? '' : `.${version.replace(/\./g, '_')}`}`;
  }

  private subscribe(): void {
    const nc = this.nc;
    // §1/§3: Services API discovery.
    for (const verb of ['PING', 'INFO', 'STATS']) {
      for (const subject of [
        `$SRV.${verb}`,
        `$SRV.${verb}.${SERVICE}`,
        `$SRV.${verb}.${SERVICE}.${this.id}`,
      ]) {
        nc.subscribe(subject, {
          callback: (err, msg) => (err ? undefined : this.discovery(verb, msg)),
        });
      }
    }
    // §2: every function on its queue-group subject.
    for (const config of FUN_CONFIGS) {
      const version = config.version ?? null;
      nc.subscribe(this.fnSubject(config.request_type, version), {
        queue: QUEUE,
        callback: (err, msg) => (err ? undefined : this.call(config.request_type, msg)),
      });
    }
    // §4: pulls through the queue group.
    nc.subscribe(`${PREFIX}.config.get.${SERVICE}`, {
      queue: QUEUE,
      callback: (err, msg) => (err ? undefined : this.answerPull(msg)),
    });
    // §2: the same, addressed to this instance.
    const direct = `${PREFIX}.inst.${SERVICE}.${this.id}.`;
    nc.subscribe(`${direct}>`, {
      callback: (err, msg) => {
        if (err) return;
        const rest = msg.subject.slice(direct.length);
        if (rest === 'config') return this.answerPull(msg);
        const tokens = rest.split('.');
        if (tokens[0] === 'fn' && tokens[1] === SERVICE) {
          const rt = tokens[2]!;
          const versionToken = tokens.slice(3).join('.') || null;
          const config = FUN_CONFIGS.find(
            (c) =>
              c.request_type === rt &&
              ((c.version ?? null) === null
                ? versionToken === null
                : (c.version ?? '').replace(/\./g, '_') === versionToken),
          );
          if (config) return this.call(rt, msg);
        }
        this.error(msg, `no such function on this instance: ${msg.subject}`, 404);
      },
    });
    // §7: stream control.
    nc.subscribe(`${PREFIX}.ctl.${SERVICE}.${this.id}.*`, {
      callback: (err, msg) => (err ? undefined : this.control(msg)),
    });
  }

  private discovery(verb: string, msg: Msg): void {
    if (verb === 'PING') {
      this.pings++;
      msg.respond(json(this.identity('io.nats.micro.v1.ping_response')));
    } else if (verb === 'INFO') {
      msg.respond(
        json({
          ...this.identity('io.nats.micro.v1.info_response'),
          description: 'a gen_api worker written from protocol/nats.md',
          endpoints: FUN_CONFIGS.map((c) => ({
            name: c.request_type,
            subject: this.fnSubject(c.request_type, c.version ?? null),
            queue_group: QUEUE,
            metadata: null,
          })),
        }),
      );
    } else {
      msg.respond(
        json({
          ...this.identity('io.nats.micro.v1.stats_response'),
          started: this.started,
          endpoints: FUN_CONFIGS.map((c) => ({
            name: c.request_type,
            subject: this.fnSubject(c.request_type, c.version ?? null),
            queue_group: QUEUE,
            num_requests: this.seen.filter((s) => s.requestType === c.request_type).length,
            num_errors: 0,
            last_error: '',
            processing_time: 0,
            average_processing_time: 0,
          })),
        }),
      );
    }
  }

  private answerPull(msg: Msg): void {
    this.pulls.push(msg.subject);
    msg.respond(json(this.pushConfig()));
  }

  /** §5: errors are the Services API error headers with an empty body. */
  private error(msg: Msg, message: string, code: number): void {
    const h = natsHeaders();
    h.set('Nats-Service-Error', message);
    h.set('Nats-Service-Error-Code', String(code));
    msg.respond(new Uint8Array(0), { headers: h });
  }

  /** §4 push: a request to <p>.config.push.<service>, collecting every gateway's PushAck for a while. */
  async push(force = false): Promise<unknown[]> {
    const h = natsHeaders();
    if (force) h.set('Genapi-Force', 'true');
    const acks: unknown[] = [];
    try {
      const replies = await this.nc.requestMany(
        `${PREFIX}.config.push.${SERVICE}`,
        json(this.pushConfig()),
        {
          strategy: 'timer',
          maxWait: 500,
          headers: h,
        },
      );
      for await (const reply of replies) acks.push(JSON.parse(reply.string()));
    } catch {
      // no gateway listening: they pull later
    }
    return acks;
  }

  private call(requestType: string, msg: Msg): void {
    const headers = headerRecord(msg.headers);
    const body: unknown = msg.data.length === 0 ? {} : JSON.parse(dec.decode(msg.data));
    this.seen.push({ subject: msg.subject, requestType, headers, body, at: Date.now() });
    const args = body as Record<string, unknown>;
    switch (requestType) {
      case 'hello':
        return void msg.respond(json({ hello: args.name, times: args.times }));
      case 'greet':
        return void msg.respond(json(`greetings, ${String(args.name)} (v2)`));
      case 'when':
        return void msg.respond(json({ at: args.at }));
      case 'fail':
        return this.error(msg, 'raw failure', 500);
      case 'verbatim':
        return void msg.respond(enc.encode(VERBATIM));
      case 'broken':
        return void msg.respond(enc.encode('{"n": 1,'));
      case 'busy':
        return this.error(msg, 'raw worker is draining', 503);
      case 'later':
        return void setTimeout(
          () => msg.respond(json({ n: args.n, doubled: (args.n as number) * 2 })),
          50,
        );
      case 'note':
        this.notes.push(String(args.text));
        return void msg.respond(json(null));
      case 'ticks':
        return this.stream(msg, headers, args);
      default:
        return this.error(msg, `unknown function ${requestType}`, 404);
    }
  }

  /** §7 streams with credit. */
  private stream(msg: Msg, h: Record<string, string>, args: Record<string, unknown>): void {
    const id = h['Genapi-Stream-Id'];
    const dataSubject = h['Genapi-Stream-Subject'];
    if (!id || !dataSubject) return this.error(msg, 'not a stream request', 400);
    const credit = Number(h['Genapi-Stream-Credit']) || 32;
    const st: RawStream = {
      id,
      requestId: h['Genapi-Request-Id'] ?? '',
      dataSubject,
      initialCredit: credit,
      allowance: credit,
      sent: 0,
      grants: [],
      maxOutstanding: 0,
      violations: [],
      waits: 0,
      cancelledAt: null,
      wake: null,
      ended: false,
      exited: false,
    };
    this.streams.set(id, st);
    const start = natsHeaders();
    start.set('Genapi-Stream-Control', `${PREFIX}.ctl.${SERVICE}.${this.id}.${id}`);
    msg.respond(json('started'), { headers: start });

    let seq = 0;
    const publish = (event: 'chunk' | 'last' | 'end' | 'error', body: unknown, error?: string) => {
      const dh = natsHeaders();
      dh.set('Genapi-Stream-Event', event);
      dh.set('Genapi-Stream-Seq', String(++seq));
      if (error !== undefined) dh.set('Nats-Service-Error', error);
      this.nc.publish(dataSubject, body === undefined ? new Uint8Array(0) : json(body), {
        headers: dh,
      });
    };
    const n = args.n as number;
    const interval = args.interval_ms as number;
    const run = async () => {
      for (let i = 1; i <= n; i++) {
        // The worker's own pace between chunks (its behaviour, not a wait of the test).
        if (interval > 0) await pause(interval);
        while (st.allowance <= 0 && st.cancelledAt === null) {
          st.waits++;
          await new Promise<void>((resolve) => (st.wake = resolve));
        }
        if (st.cancelledAt !== null) return;
        if (args.fail_at === i) {
          st.ended = true;
          return publish('error', undefined, `raw stream failed at ${i}`);
        }
        const isLast = i === n && args.last === true;
        publish(isLast ? 'last' : 'chunk', i);
        st.allowance--;
        st.sent++;
        st.maxOutstanding = Math.max(st.maxOutstanding, st.initialCredit - st.allowance);
      }
      st.ended = true;
      if (args.last !== true) publish('end', undefined);
    };
    run().then(
      () => (st.exited = true),
      (err: unknown) => {
        st.exited = true;
        st.violations.push(`the stream loop failed: ${String(err)}`);
      },
    );
  }

  private control(msg: Msg): void {
    const id = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const st = this.streams.get(id);
    if (!st) return;
    const kind = msg.headers?.get('Genapi-Control');
    if (kind === 'credit') {
      const text = msg.string();
      st.grants.push(text);
      const more = Number(text);
      if (!/^\d+$/.test(text) || more <= 0)
        st.violations.push(`credit body ${JSON.stringify(text)} is not a positive decimal`);
      if (st.allowance + more > st.initialCredit)
        st.violations.push(
          `grant ${more} with ${st.allowance} left would allow ${st.allowance + more} > ${st.initialCredit}`,
        );
      st.allowance += more;
    } else if (kind === 'cancel') {
      if (st.cancelledAt === null) st.cancelledAt = performance.now();
    }
    const wake = st.wake;
    st.wake = null;
    wake?.();
  }

  async stop(): Promise<void> {
    for (const st of this.streams.values()) {
      st.cancelledAt ??= performance.now();
      st.wake?.();
    }
    await this.nc.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------
const req = (
  id: string,
  requestType: string,
  args: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
) => ({
  request_id: id,
  service: SERVICE,
  request_type: requestType,
  args,
  ...extra,
});

describe('a worker written from protocol/nats.md alone (plain NATS client)', () => {
  let nats: NatsServer;
  let g1: GenApiApp;
  let g2: GenApiApp | null = null;
  let worker: RawWorker;
  let client: ApiClient;
  let probe: NatsConnection;

  beforeAll(async () => {
    nats = await NatsServer.start();
    g1 = await startGenApiApp({ nats: nats.url });
    worker = await RawWorker.start(nats.url);
    await until(
      () => g1.genApi.nats!.discovery.get(worker.id),
      'gateway 1 to discover the raw worker',
    );
    client = await ApiClient.connect(g1.wsUrl('user_id=u1&device_id=d1&roles[]=admin&roles[]=ops'));
    probe = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    client?.terminate();
    await probe?.close();
    await g2?.close();
    await g1?.close();
    await worker?.stop();
    await nats?.dispose();
  });

  const lastSeen = (requestType: string) =>
    [...worker.seen].reverse().find((s) => s.requestType === requestType)!;

  let markers = 0;
  /**
   * A sync call to the same worker after the request under test: once it is answered, the
   * client has every push the gateway sent it before.
   */
  async function marker(): Promise<void> {
    const id = `marker-${++markers}`;
    const { push } = await client.sync(req(id, 'hello', { name: 'marker' }));
    expect(push.success).toBe(true);
  }

  it('answers $SRV.PING with the documented ping response; the gateway discovers it by it', async () => {
    const replies = await probe.requestMany('$SRV.PING', undefined, {
      strategy: 'stall',
      stall: 100,
      maxWait: 1_000,
    });
    const answers: unknown[] = [];
    for await (const reply of replies) answers.push(JSON.parse(reply.string()));
    expect(answers).toContainEqual({
      type: 'io.nats.micro.v1.ping_response',
      name: 'raw',
      id: worker.id,
      version: '1.0.0',
      metadata: { genapi_protocol: '1', genapi_prefix: 'genapi', genapi_config_version: 'raw-v1' },
    });
    expect(worker.pings).toBeGreaterThan(1); // the gateway keeps pinging (1 s by default, 200 ms here)
    expect(g1.genApi.nats!.discovery.get(worker.id)).toMatchObject({
      id: worker.id,
      service: 'raw',
      version: '1.0.0',
      configVersion: 'raw-v1',
    });
    const info = await probe.request(`$SRV.INFO.raw.${worker.id}`, undefined, { timeout: 1_000 });
    expect(info.json()).toMatchObject({
      type: 'io.nats.micro.v1.info_response',
      id: worker.id,
      name: 'raw',
    });
  });

  it('pushed its config on start: each PushAck conforms to push-ack.schema.json and accepted every function', async () => {
    expect(conforms('push-config.schema.json', worker.pushConfig())).toBe('valid');
    expect(worker.acks).toHaveLength(1);
    const ack = worker.acks[0];
    expect(conforms('push-ack.schema.json', ack)).toBe('valid');
    expect(ack).toMatchObject({
      gateway: g1.gateway.nodeId,
      status: 'accepted',
      service: 'raw',
      config_version: 'raw-v1',
      rejected: [],
    });
    const accepted = (ack as { accepted: { request_type: string; version: string | null }[] })
      .accepted;
    expect(accepted).toHaveLength(FUN_CONFIGS.length);
    expect(accepted).toContainEqual({ request_type: 'greet', version: '2.0.0' });
    expect(accepted).toContainEqual({ request_type: 'hello', version: null });
    // The same version again is skipped; Genapi-Force replaces it anyway.
    const again = await worker.push();
    expect(again).toEqual([
      { gateway: g1.gateway.nodeId, status: 'skipped', service: 'raw', reason: 'version_matches' },
    ]);
    expect(conforms('push-ack.schema.json', again[0])).toBe('valid');
    const forced = await worker.push(true);
    expect(forced).toHaveLength(1);
    expect(conforms('push-ack.schema.json', forced[0])).toBe('valid');
    expect(forced[0]).toMatchObject({ status: 'accepted', config_version: 'raw-v1' });
  });

  it('a sync call: the worker gets the validated arguments (defaults filled) and the socket identity in the documented headers', async () => {
    const before = Date.now();
    const { push, reply } = await client.sync(
      req(
        'r-hello',
        'hello',
        { name: 'ada' },
        { user_id: 'evil', device_id: 'spoofed', user_roles: ['root'] },
      ),
    );
    expect(push).toEqual(response('r-hello', { result: { hello: 'ada', times: 1 } }));
    expect(reply).toEqual({ status: 'ok', response: 'hello' });
    const seen = lastSeen('hello');
    expect(seen.body).toEqual({ name: 'ada', times: 1 });
    // The gateway knows this instance, so it addresses it directly (§2); the queue-group subject is the fallback.
    expect([`genapi.inst.raw.${worker.id}.fn.raw.hello`, 'genapi.fn.raw.hello']).toContain(
      seen.subject,
    );
    const h = seen.headers;
    expect(h).toMatchObject({
      'Genapi-Request-Id': 'r-hello',
      'Genapi-Service': 'raw',
      'Genapi-Request-Type': 'hello',
      'Genapi-User-Id': 'u1',
      'Genapi-Device-Id': 'd1',
      'Genapi-Response-Type': 'sync',
      'Genapi-Timeout': '2000',
      'Genapi-Gateway': g1.gateway.nodeId,
    });
    expect(JSON.parse(h['Genapi-Roles']!)).toEqual(['admin', 'ops']);
    expect(h['Genapi-Version']).toBeUndefined();
    const deadline = Number(h['Genapi-Deadline']);
    expect(deadline).toBeGreaterThanOrEqual(before + 2000 - 50);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 2000 + 50);
  });

  it('exact frames (RawClient): the result push, then the phx_reply; an error push, then the reply', async () => {
    const raw = await RawClient.connect(g1.wsUrl('user_id=u9'));
    try {
      expect(await raw.join('gen_api:raw', '1')).toEqual([
        '1',
        '1',
        'gen_api:raw',
        'phx_reply',
        { status: 'ok', response: {} },
      ]);
      raw.send([
        '1',
        '2',
        'gen_api:raw',
        'phoenix_gen_api',
        req('f1', 'hello', { name: 'frames', times: 2 }),
      ]);
      expect(await raw.take(2)).toEqual([
        [
          '1',
          null,
          'gen_api:raw',
          'phoenix_gen_api',
          response('f1', { result: { hello: 'frames', times: 2 } }),
        ],
        ['1', '2', 'gen_api:raw', 'phx_reply', { status: 'ok', response: 'hello' }],
      ]);
      raw.send(['1', '3', 'gen_api:raw', 'phoenix_gen_api', req('f2', 'fail')]);
      expect(await raw.take(2)).toEqual([
        [
          '1',
          null,
          'gen_api:raw',
          'phoenix_gen_api',
          response('f2', { success: false, error: 'Internal Server Error' }),
        ],
        ['1', '3', 'gen_api:raw', 'phx_reply', { status: 'ok', response: 'fail' }],
      ]);
      expect(lastSeen('hello').headers['Genapi-User-Id']).toBe('u9');
      expect(lastSeen('hello').headers['Genapi-Device-Id']).toBeUndefined();
      expect(lastSeen('hello').headers['Genapi-Roles']).toBeUndefined();
    } finally {
      raw.close();
    }
  });

  it("a result reaches the client as the worker's JSON text, unparsed; a reply that is not JSON is an error", async () => {
    const raw = await RawClient.connect(g1.wsUrl('user_id=u9'));
    try {
      await raw.join('gen_api:raw', '1');
      raw.send(['1', '2', 'gen_api:raw', 'phoenix_gen_api', req('v1', 'verbatim')]);
      const [push] = await raw.take(2);
      expect(push).toEqual([
        '1',
        null,
        'gen_api:raw',
        'phoenix_gen_api',
        response('v1', { result: { n: 1.5, s: 'é', list: [true, null], pad: PADDING } }),
      ]);
      // The frame carries the worker's bytes as they were (spacing, 1.50, the escape).
      expect(raw.texts.some((text) => text.includes(`"result":${VERBATIM},`))).toBe(true);
      raw.send(['1', '3', 'gen_api:raw', 'phoenix_gen_api', req('v2', 'broken')]);
      expect((await raw.take(2))[0]).toEqual([
        '1',
        null,
        'gen_api:raw',
        'phoenix_gen_api',
        response('v2', { success: false, error: 'Internal Server Error' }),
      ]);
    } finally {
      raw.close();
    }
  });

  it('a request_id sent as a number reaches the worker as a string and comes back as sent', async () => {
    const { push } = await client.sync({
      request_id: 42,
      service: 'raw',
      request_type: 'hello',
      args: { name: 'n', times: 3 },
    });
    expect(push).toEqual(response(42, { result: { hello: 'n', times: 3 } }));
    expect(lastSeen('hello').headers['Genapi-Request-Id']).toBe('42');
  });

  it('a versioned function: subject token 2_0_0 and the Genapi-Version header', async () => {
    const { push } = await client.sync(
      req('r-greet', 'greet', { name: 'bo' }, { version: '2.0.0' }),
    );
    expect(push).toEqual(response('r-greet', { result: 'greetings, bo (v2)' }));
    const seen = lastSeen('greet');
    expect([
      `genapi.inst.raw.${worker.id}.fn.raw.greet.2_0_0`,
      'genapi.fn.raw.greet.2_0_0',
    ]).toContain(seen.subject);
    expect(seen.headers['Genapi-Version']).toBe('2.0.0');
    // Without a version the highest versioned config answers (gen_api.md §3.1).
    expect((await client.sync(req('r-greet-latest', 'greet', { name: 'cy' }))).push.result).toBe(
      'greetings, cy (v2)',
    );
  });

  it('datetimes reach the worker as UTC ISO 8601', async () => {
    const { push } = await client.sync(req('r-when', 'when', { at: '2024-03-01T10:30:00+02:00' }));
    const at = (push.result as { at: string }).at;
    expect(at).toMatch(/Z$/);
    expect(Date.parse(at)).toBe(Date.parse('2024-03-01T08:30:00Z'));
  });

  it('an error reply (Nats-Service-Error 500): Internal Server Error; with detailError the message', async () => {
    expect((await client.sync(req('r-fail', 'fail'))).push).toEqual(
      response('r-fail', { success: false, error: 'Internal Server Error' }),
    );
    const detailed = await startGenApiApp({ nats: nats.url, genApi: { detailError: true } });
    try {
      await until(
        () => detailed.genApi.registry.resolve('raw', 'fail', null).ok,
        'the detail gateway to pull the config',
      );
      const c = await ApiClient.connect(detailed.wsUrl('user_id=u1'));
      expect((await c.sync(req('r-fail-d', 'fail'))).push).toEqual(
        response('r-fail-d', { success: false, error: 'Internal Server Error: raw failure' }),
      );
      c.terminate();
    } finally {
      await detailed.close();
    }
  });

  it('a 503 reply (draining) on the only instance: Service temporarily unavailable, can_retry', async () => {
    const { push, reply } = await client.sync(req('r-busy', 'busy'));
    expect(push).toEqual(
      response('r-busy', {
        success: false,
        error: 'Service temporarily unavailable',
        can_retry: true,
      }),
    );
    expect(reply).toEqual({ status: 'ok', response: 'busy' });
  });

  it('async: ack, reply, then the worker result; none: reply only, the worker still gets it', async () => {
    const ref = client.call(req('r-later', 'later', { n: 21 }));
    await client.until(() => client.pushes('r-later').length === 2, 'the async result');
    expect(client.pushes('r-later')).toEqual([
      response('r-later', { async: true }),
      response('r-later', { result: { n: 21, doubled: 42 } }),
    ]);
    expect(client.replyTime(ref)!).toBeLessThan(client.pushTimes('r-later')[1]!);
    expect(lastSeen('later').headers['Genapi-Response-Type']).toBe('async');

    const noteRef = client.call(req('r-note', 'note', { text: 'fire' }));
    expect(await client.reply(noteRef)).toEqual({ status: 'ok', response: 'note' });
    await until(() => worker.notes.includes('fire'), 'the note at the worker');
    expect(lastSeen('note').headers['Genapi-Response-Type']).toBe('none');
    await marker();
    expect(client.pushes('r-note')).toEqual([]);
  });

  it('a 200-chunk stream with credit 32: in order, the worker waits for credit, and is never allowed more than 32 outstanding', async () => {
    const ref = client.call(req('r-ticks', 'ticks', { n: 200 }));
    const pushes = await client.streamDone('r-ticks');
    expect(client.replies(ref)).toEqual([{ status: 'ok', response: 'ticks' }]);
    expect(pushes[0]).toEqual(response('r-ticks', { result: 'init', async: true, has_more: true }));
    expect(pushes[1]).toEqual(
      response('r-ticks', {
        result: response('r-ticks', { result: 'started' }),
        async: true,
        has_more: true,
      }),
    );
    expect(streamChunks(pushes)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(pushes.at(-1)).toEqual(response('r-ticks', { async: true }));
    const st = [...worker.streams.values()].find((s) => s.requestId === 'r-ticks')!;
    const seen = lastSeen('ticks').headers;
    expect(seen['Genapi-Response-Type']).toBe('stream');
    expect(seen['Genapi-Stream-Subject']).toBe(
      `genapi.gw.${g1.gateway.nodeId}.s.${seen['Genapi-Stream-Id']}`,
    );
    expect(seen['Genapi-Stream-Id']).toMatch(/^[^\s.*>]+$/);
    expect(st.initialCredit).toBe(32);
    expect(st.sent).toBe(200);
    expect(st.waits).toBeGreaterThan(0);
    expect(st.grants.length).toBeGreaterThan(0);
    expect(st.violations).toEqual([]);
    expect(st.maxOutstanding).toBeLessThanOrEqual(32);
    // Credit covers everything sent: 32 + the grants ≥ 200.
    expect(32 + st.grants.reduce((sum, g) => sum + Number(g), 0)).toBeGreaterThanOrEqual(200);
  });

  it('`last` and `error` stream events', async () => {
    client.call(req('r-last', 'ticks', { n: 3, last: true }));
    const last = await client.streamDone('r-last');
    expect(last.slice(2)).toEqual([
      response('r-last', { result: 1, async: true, has_more: true }),
      response('r-last', { result: 2, async: true, has_more: true }),
      response('r-last', { result: 3, async: true, has_more: false }),
    ]);
    client.call(req('r-err', 'ticks', { n: 10, fail_at: 3 }));
    const failed = await client.streamDone('r-err');
    expect(failed.slice(2)).toEqual([
      response('r-err', { result: 1, async: true, has_more: true }),
      response('r-err', { result: 2, async: true, has_more: true }),
      response('r-err', { success: false, error: 'Internal Server Error' }),
    ]);
    await marker();
    expect(client.pushes('r-last')).toHaveLength(5);
    expect(client.pushes('r-err')).toHaveLength(5);
  });

  it('the client cancel event reaches the worker as a `cancel` control message at once; the worker stops', async () => {
    client.call(req('r-cancel', 'ticks', { n: 100_000, interval_ms: 10 }));
    await client.until(() => client.pushes('r-cancel').length >= 6, 'a few chunks');
    const st = [...worker.streams.values()].find((s) => s.requestId === 'r-cancel')!;
    const t0 = performance.now();
    const ref = client.cancel('r-cancel');
    await until(() => st.cancelledAt !== null, 'the cancel at the worker');
    // Caused by the cancel event: well below the stream's 5 s timeout.
    expect(st.cancelledAt! - t0).toBeLessThan(2_500);
    expect(await client.reply(ref)).toEqual({ status: 'ok', response: { cancelled: true } });
    const pushes = await client.streamDone('r-cancel');
    expect(pushes.at(-1)).toEqual(response('r-cancel', { async: true }));
    // The worker's loop stopped (it sends nothing more), and nothing more reached the client.
    await until(() => st.exited, "the worker's stream loop to stop");
    const sent = st.sent;
    await marker();
    expect(st.sent).toBe(sent);
    expect(client.pushes('r-cancel')).toHaveLength(pushes.length);
  });

  it('answers config pulls: a new gateway pulls <p>.inst.<service>.<id>.config on discovery and serves at once; <p>.config.get.<service> answers too', async () => {
    worker.pulls.length = 0;
    g2 = await startGenApiApp({ nats: nats.url });
    expect(worker.pulls).toContain(`genapi.inst.raw.${worker.id}.config`);
    expect(g2.genApi.registry.resolve('raw', 'hello', null).ok).toBe(true);
    const c = await ApiClient.connect(g2.wsUrl('user_id=u2'));
    try {
      const { push } = await c.sync(req('r-g2', 'hello', { name: 'via g2' }));
      expect(push).toEqual(response('r-g2', { result: { hello: 'via g2', times: 1 } }));
      expect(lastSeen('hello').headers['Genapi-Gateway']).toBe(g2.gateway.nodeId);
    } finally {
      c.terminate();
    }
    // The queue-group pull subject (any instance answers), as a gateway would send it: empty body.
    const answer = await probe.request('genapi.config.get.raw', new Uint8Array(0), {
      timeout: 1_000,
    });
    expect(worker.pulls).toContain('genapi.config.get.raw');
    expect(conforms('push-config.schema.json', answer.json())).toBe('valid');
    expect(answer.json()).toMatchObject({
      service: 'raw',
      config_version: 'raw-v1',
      instance_id: worker.id,
    });
    // Both gateways now answer a push.
    const acks = await worker.push(true);
    expect(acks.map((a) => (a as { gateway: string }).gateway).sort()).toEqual(
      [g1.gateway.nodeId, g2.gateway.nodeId].sort(),
    );
    for (const ack of acks) expect(conforms('push-ack.schema.json', ack)).toBe('valid');
  });
});
