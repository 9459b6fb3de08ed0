/**
 * Typed errors (src/errors.ts): every error class is a GatewayError with a unique code, the
 * public ones are exported and documented in protocol/errors.md, and the two NATS failures that
 * used to be recognised by their message text (no responders, max_payload) are recognised from
 * nats.js's error classes, against a real nats-server.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  connect,
  type NatsConnection,
  type Subscription,
  headers as natsHeaders,
  InvalidArgumentError as NatsInvalidArgumentError,
  NoRespondersError,
  RequestError,
} from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as gateway from '../../src/index.js';
import * as worker from '../../src/worker/index.js';
import {
  GatewayError,
  GatewayRangeError,
  GatewayTypeError,
  InvalidArgumentError,
  OutOfRangeError,
} from '../../src/errors.js';
import { OptionError } from '../../src/config/errors.js';
import { Discovery } from '../../src/bus/nats/discovery.js';
import { PayloadTooLargeError, RequestFailure, Requester } from '../../src/bus/nats/requester.js';
import { CliError } from '../../src/cli/args.js';
import { ArgumentError } from '../../src/genapi/args/errors.js';
import { HookTimeoutError } from '../../src/genapi/hooks.js';
import { DecodeError } from '../../src/genapi/request.js';
import { TransportFailureError } from '../../src/genapi/resilience.js';
import { QueryDecodeError } from '../../src/http/query.js';
import { META, PROTOCOL_VERSION } from '../../src/nats/headers.js';
import { StoreError } from '../../src/ratelimit/limiter.js';
import { NeverSatisfiableError } from '../../src/ratelimit/types.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';
import { FrameDecodeError, FrameEncodeError } from '../../src/wire/message.js';
import { manualClock } from '../support/clock.js';
import { NatsServer } from '../support/nats.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

type ErrorClass = abstract new (...args: never[]) => Error;

function errorClasses(module: Record<string, unknown>): [string, ErrorClass][] {
  return Object.entries(module).filter(
    (entry): entry is [string, ErrorClass] =>
      typeof entry[1] === 'function' && (entry[1] as ErrorClass).prototype instanceof Error,
  );
}

/** One instance of a public error class (every one takes the message first). */
function instance(ctor: ErrorClass): Error & { code: string } {
  return new (ctor as unknown as new (message: string) => Error & { code: string })('m');
}

/** `| \`CODE\` | \`Class\` …` rows of protocol/errors.md. */
function documentedCodes(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const match of read('protocol/errors.md').matchAll(/^\| `([A-Za-z_]+)` \| `(\w+)`/gm))
    rows.set(match[1]!, match[2]!);
  return rows;
}

const exported = new Map([...errorClasses(gateway), ...errorClasses(worker)]);

describe('the public error classes', () => {
  it('both entry points export GatewayError, the same class', () => {
    expect(gateway.GatewayError).toBe(GatewayError);
    expect(worker.GatewayError).toBe(GatewayError);
  });

  it('every exported error class is a GatewayError with a name, a unique code and a row in protocol/errors.md', () => {
    const docs = documentedCodes();
    const seen = new Map<string, string>();
    // The bases themselves carry no code of their own.
    const bases: unknown[] = [GatewayError, GatewayTypeError, GatewayRangeError];
    const classes = [...exported].filter(([, ctor]) => !bases.includes(ctor));
    expect(classes.map(([name]) => name).sort()).toEqual(
      [
        'BroadcastTooLargeError',
        'CancelledError',
        'ChannelBroadcastTooLargeError',
        'ConfigError',
        'InvalidArgumentError',
        'InvalidStateError',
        'NatsConnectError',
        'NoGatewayError',
        'OptionError',
        'OutOfRangeError',
        'PolicyError',
        'PresenceRequestError',
        'ServiceError',
        'StreamClosedError',
        'WorkerClosedError',
      ].sort(),
    );
    for (const [name, ctor] of classes) {
      const err = instance(ctor);
      expect(err, name).toBeInstanceOf(GatewayError);
      expect(err, name).toBeInstanceOf(ctor);
      expect(err, name).toBeInstanceOf(Error);
      expect(err.name, name).toBe(name);
      expect(err.message).toBe('m');
      expect(err.code, name).toMatch(/^ERR_[A-Z_]+$/);
      expect(seen.get(err.code), `${name} shares ${err.code}`).toBeUndefined();
      seen.set(err.code, name);
      expect(docs.get(err.code), `${err.code} documented for ${name}`).toBe(name);
    }
    // And protocol/errors.md documents nothing else.
    expect([...docs.keys()].sort()).toEqual([...seen.keys()].sort());
  });

  it('errors that callers catch as TypeError/RangeError keep that identity and are still GatewayErrors', () => {
    const option = new OptionError('bad');
    expect(option).toBeInstanceOf(TypeError);
    expect(option).toBeInstanceOf(GatewayError);
    expect(option.code).toBe('ERR_OPTION');
    expect(new InvalidArgumentError('x')).toBeInstanceOf(TypeError);
    expect(new OutOfRangeError('x')).toBeInstanceOf(RangeError);
    expect(new OutOfRangeError('x')).not.toBeInstanceOf(OptionError);
    expect(new OptionError('x')).not.toBeInstanceOf(InvalidArgumentError);
  });

  it('nothing else is a GatewayError', () => {
    for (const value of [new Error('x'), new TypeError('x'), { code: 'ERR_OPTION' }, null, 'x'])
      expect(value).not.toBeInstanceOf(GatewayError);
  });

  it('ServiceError keeps its constructor: the status is the second argument', () => {
    const err = new worker.ServiceError('nope', 422);
    expect(err.status).toBe(422);
    expect(err.code).toBe('ERR_SERVICE');
    expect(new worker.ServiceError('boom').status).toBe(500);
  });

  it('public calls throw the documented classes', () => {
    expect(() => gateway.refuse(200)).toThrow(OutOfRangeError);
    const gw = gateway.createGateway({ logger: false });
    expect(() => gw.socket('/socket').channel('', { join: () => undefined })).toThrow(
      InvalidArgumentError,
    );
    gw.socket('/twice');
    expect(() => gw.socket('/twice')).toThrow(gateway.InvalidStateError);
    expect(() => worker.defineService({ name: 'a b', functions: {} })).toThrow(
      worker.InvalidArgumentError,
    );
  });
});

describe('the internal error classes', () => {
  const internal: [ErrorClass, Error & { code: string }][] = [
    [HookTimeoutError, new HookTimeoutError('m')],
    [TransportFailureError, new TransportFailureError('m')],
    [ArgumentError, new ArgumentError('m')],
    [PayloadTooLargeError, new PayloadTooLargeError('m')],
    [RequestFailure, new RequestFailure('timeout', 'm')],
    [StoreError, new StoreError('m')],
    [NeverSatisfiableError, new NeverSatisfiableError('m')],
    [QueryDecodeError, new QueryDecodeError('m')],
    [CliError, new CliError('m')],
    [FrameDecodeError, new FrameDecodeError('m')],
    [FrameEncodeError, new FrameEncodeError('m')],
  ];

  it('are GatewayErrors with their own name and a code of their own, documented in src/errors.ts only', () => {
    const source = read('src/errors.ts');
    const publicCodes = new Set(documentedCodes().keys());
    const codes = new Set<string>();
    for (const [ctor, err] of internal) {
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toBeInstanceOf(ctor);
      expect(err.name).toBe(ctor.name);
      expect(codes.has(err.code), err.code).toBe(false);
      codes.add(err.code);
      expect(publicCodes.has(err.code), err.code).toBe(false);
      expect(source).toContain(`'${err.code}'`);
    }
  });

  it("DecodeError has its own code and keeps PhoenixGenApi's reason beside it", () => {
    const err = new DecodeError('missing_field', 'Missing required fields: service');
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.code).toBe('ERR_GENAPI_DECODE');
    expect(err.reason).toBe('missing_field');
    expect(err.name).toBe('DecodeError');
  });
});

/** Every .ts file under src/. */
function sources(dir = new URL('src/', root).pathname): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('src/', () => {
  it('makes no plain Error/TypeError/RangeError and declares no error class outside the base', () => {
    for (const file of sources()) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/new (Error|TypeError|RangeError)\(/);
      if (!file.endsWith('/src/errors.ts'))
        expect(text, file).not.toMatch(/class \w+ extends (Error|TypeError|RangeError)\b/);
    }
  });

  it('classifies no error by its message text', () => {
    for (const file of ['src/bus/nats/discovery.ts', 'src/bus/nats/requester.ts']) {
      const text = read(file);
      expect(text, file).not.toMatch(/no responders\/i|max\.\?payload/);
    }
  });
});

describe('NATS failures from nats.js error classes (real nats-server)', () => {
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

  it('nats.js reports what the gateway relies on: typed no-responders errors, InvalidArgumentError for max_payload', async () => {
    const iterate = async () => {
      for await (const _ of await nc.requestMany('nobody.listens', undefined, { maxWait: 5_000 }));
    };
    await expect(iterate()).rejects.toBeInstanceOf(NoRespondersError);
    const failed = await nc.request('nobody.listens', undefined, { timeout: 5_000 }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(RequestError);
    expect((failed as RequestError).isNoResponders()).toBe(true);
    const tooLarge = new Uint8Array(nc.info!.max_payload + 1);
    expect(() => nc.publish('anything', tooLarge)).toThrow(NatsInvalidArgumentError);
  });

  it('the requester turns a publish over max_payload into PayloadTooLargeError', async () => {
    const requester = new Requester(nc, new TimerWheel(5));
    try {
      const body = new Uint8Array(nc.info!.max_payload + 1);
      const err = await requester.request('echo', body, natsHeaders(), 5_000).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PayloadTooLargeError);
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as PayloadTooLargeError).code).toBe('ERR_PAYLOAD_TOO_LARGE');
      expect((err as PayloadTooLargeError).cause).toBeInstanceOf(NatsInvalidArgumentError);
      expect(requester.size).toBe(0);
    } finally {
      requester.close();
    }
  });

  /** A fake worker instance answering $SRV.PING (and $SRV.PING.svc.<id>) at once. */
  function fakeInstance(id: string): Subscription {
    const identity = JSON.stringify({
      type: 'io.nats.micro.v1.ping_response',
      name: 'svc',
      id,
      version: '1.0.0',
      metadata: { [META.protocol]: PROTOCOL_VERSION, [META.prefix]: 'errs' },
    });
    // The broadcast ping, and the check on its own subject that discovery makes before admitting it.
    return workers.subscribe('$SRV.>', {
      callback: (_err, msg) => {
        if (msg.subject === '$SRV.PING' || msg.subject === `$SRV.PING.svc.${id}`)
          msg.respond(new TextEncoder().encode(identity));
      },
    });
  }

  const ids = (discovery: Discovery) => discovery.all().map((i) => i.id);

  it('discovery: no responders to a ping means no instance runs, so known ones expire', async () => {
    const clock = manualClock(1_000);
    // The ping window is real time: long enough for a loaded machine to answer within it.
    const discovery = new Discovery(
      nc,
      'errs',
      { ttlMs: 100, pingWaitMs: 1_000 },
      pino({ level: 'silent' }),
      clock.now,
    );
    const sub = fakeInstance('a');
    await workers.flush();
    await discovery.ping();
    expect(ids(discovery)).toEqual(['a']);
    sub.unsubscribe();
    await workers.flush();
    clock.advance(101);
    await discovery.ping(); // $SRV.PING now has no subscriber: the server answers 503.
    expect(ids(discovery)).toEqual([]);
  });

  it('discovery: any other failure (a closed connection) keeps what it knows', async () => {
    const own = await connect({ servers: server.url });
    const clock = manualClock(1_000);
    const discovery = new Discovery(
      own,
      'errs',
      { ttlMs: 100, pingWaitMs: 1_000 },
      pino({ level: 'silent' }),
      clock.now,
    );
    const sub = fakeInstance('b');
    await workers.flush();
    await discovery.ping();
    expect(ids(discovery)).toEqual(['b']);
    await own.close();
    clock.advance(101);
    await discovery.ping();
    expect(ids(discovery)).toEqual(['b']);
    sub.unsubscribe();
  });
});
