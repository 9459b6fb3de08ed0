/**
 * Protocol fuzzing over real WebSockets. fast-check generates 10,000 client frames: valid joins,
 * leaves and pushes to the conformance app's channels (crashing events included), near-valid V2
 * arrays with random field types, arbitrary JSON, random binary buffers and binary frames with
 * valid headers but random lengths. They are sent over several connections that run at once
 * (three V2, one V1), reconnecting whenever the server closes one.
 *
 * An independent oracle (the decoding rules of protocol spec §2 and §1.6) predicts for each
 * frame whether the server must close the connection (1011 undecodable, 1007 invalid UTF-8 text)
 * or keep it open; a frame that is expected to be fatal ends its segment, and valid frames are
 * sent in batches closed by a heartbeat round-trip. Every server frame is checked to be
 * well-formed. Afterwards: no uncaught exception or unhandled rejection, a fresh client still
 * gets a heartbeat reply, and once every client is gone the gateway holds no socket, channel,
 * presence or subscription.
 *
 * Reproduce a run with FUZZ_SEED=<seed> (the seed is in every failure message).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { expectEmpty, footprint, heartbeatWorks } from './helpers.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_2024);
const TOTAL_FRAMES = 10_000;
const BATCH = 60;

// -------------------------------------------------------------------------------------------
// Frames and the oracle
// -------------------------------------------------------------------------------------------

type Vsn = 'v1' | 'v2';

interface FuzzFrame {
  /** What the generator meant to produce (for diagnostics and the summary only). */
  readonly kind: string;
  /** A string is sent as a text frame; bytes as a binary frame, or as a text frame when `rawText`. */
  readonly data: string | Uint8Array;
  readonly rawText?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function validUtf8(bytes: Uint8Array): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function isRef(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number';
}

/** Spec §2.2: a V2 text frame is an array of at least 5 with string topic/event and scalar refs. */
function v2TextDecodes(text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  if (!Array.isArray(value) || value.length < 5) return false;
  const [joinRef, ref, topic, event] = value as unknown[];
  return typeof topic === 'string' && typeof event === 'string' && isRef(ref) && isRef(joinRef);
}

/** Spec §2.1: a V1 text frame is an object with topic, event, payload and ref. */
function v1TextDecodes(text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const frame = value as Record<string, unknown>;
  for (const key of ['topic', 'event', 'payload', 'ref'])
    if (!Object.prototype.hasOwnProperty.call(frame, key)) return false;
  const joinRef = Object.prototype.hasOwnProperty.call(frame, 'join_ref') ? frame.join_ref : null;
  return (
    typeof frame.topic === 'string' &&
    typeof frame.event === 'string' &&
    isRef(frame.ref) &&
    isRef(joinRef)
  );
}

/** Spec §2.3: only kind 0, a header that fits, UTF-8 string fields. */
function binaryDecodes(frame: Uint8Array): boolean {
  if (frame.length < 5 || frame[0] !== 0) return false;
  const lengths = [frame[1]!, frame[2]!, frame[3]!, frame[4]!];
  let offset = 5;
  for (const length of lengths) {
    if (offset + length > frame.length) return false;
    if (!validUtf8(frame.subarray(offset, offset + length))) return false;
    offset += length;
  }
  return true;
}

/** The close code the server must answer `frame` with, or null when the connection stays open. */
function expectedClose(vsn: Vsn, frame: FuzzFrame): number | null {
  if (typeof frame.data !== 'string' && !frame.rawText) {
    if (vsn === 'v1') return 1011;
    return binaryDecodes(frame.data) ? null : 1011;
  }
  let text: string;
  if (typeof frame.data === 'string') text = frame.data;
  else if (!validUtf8(frame.data)) return 1007;
  else text = Buffer.from(frame.data).toString('utf8');
  return (vsn === 'v1' ? v1TextDecodes(text) : v2TextDecodes(text)) ? null : 1011;
}

// -------------------------------------------------------------------------------------------
// Generators
// -------------------------------------------------------------------------------------------

const EVENTS = [
  'echo',
  'push',
  'push_then_reply',
  'broadcast',
  'broadcast_from',
  'intercepted',
  'status_only',
  'error_reply',
  'custom_status',
  'noreply',
  'async',
  'slow',
  'boom',
  'async_boom',
  'stop_normal',
  'stop_shutdown_reply',
  'stop_kaboom',
  'bin',
  'bin_reply_only',
  'assign',
  'update',
  'untrack',
  'list',
  'phx_leave',
  'phx_join',
  'heartbeat',
  'phx_reply',
  'phx_close',
  'phx_error',
];

const LONG_TOPIC = 'room:' + 'L'.repeat(260);
const TOPICS = [
  'room:a',
  'room:b',
  'room:shared',
  'room:reply',
  'room:afterjoin',
  'room:term1',
  'room:slowjoin',
  'room:deny',
  'room:crashjoin',
  'room:café',
  'presence:lobby',
  'presence:x',
  'nomatch',
  'phoenix',
  '',
  LONG_TOPIC,
];
const PRESENCE_KEYS = ['alice', 'bob', '__proto__', 'constructor', '', 'é'];

const smallRef = fc.constantFrom<string | number | null>('1', '2', '3', '4', null, '', 1, 2);
const anyRef = fc.oneof(
  { arbitrary: smallRef, weight: 6 },
  { arbitrary: fc.string({ maxLength: 4 }), weight: 2 },
  { arbitrary: fc.integer({ min: -5, max: 1_000 }), weight: 1 },
);
const topic = fc.oneof(
  { arbitrary: fc.constantFrom(...TOPICS), weight: 12 },
  { arbitrary: fc.string({ maxLength: 12 }).map((s) => 'room:' + s), weight: 2 },
  { arbitrary: fc.string({ maxLength: 12 }), weight: 1 },
);
const event = fc.oneof(
  { arbitrary: fc.constantFrom(...EVENTS), weight: 8 },
  { arbitrary: fc.string({ maxLength: 10 }), weight: 1 },
);
const protoPayload = fc.constant(
  JSON.parse(
    '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
  ) as unknown,
);
const payload = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 8 },
  { arbitrary: fc.constant({}), weight: 4 },
  { arbitrary: protoPayload, weight: 1 },
);
const presenceJoin = fc.record({
  key: fc.oneof(fc.constantFrom(...PRESENCE_KEYS), fc.jsonValue({ maxDepth: 0 })),
  meta: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)),
});
/** null most of the time, a value about once in `odds + 1`. */
function rarely<T>(arb: fc.Arbitrary<T>, odds = 10): fc.Arbitrary<T | null> {
  return fc.oneof({ arbitrary: fc.constant(null), weight: odds }, { arbitrary: arb, weight: 1 });
}
const shortMs = fc.integer({ min: 0, max: 25 }).map((ms) => ({ ms }));

/** Payloads the test app would sleep on are kept short, so no frame stalls a lane for long. */
function tame(t: string, e: string, p: unknown, joinPayload: unknown): unknown {
  if (e === 'slow') return joinPayload;
  if (e === 'phx_join' && t === 'room:slowjoin') return joinPayload;
  return p;
}

/** A well-formed V2 message to the app's topics (join, leave, push, heartbeat, ...). */
const v2Message: fc.Arbitrary<FuzzFrame> = fc
  .tuple(smallRef, anyRef, topic, event, payload, shortMs, rarely(fc.jsonValue({ maxDepth: 1 })))
  .map(([jr, ref, t, e, p, ms, extra]) => {
    const frame: unknown[] = [jr, ref, t, e, tame(t, e, p, ms)];
    if (extra !== null) frame.push(extra);
    return { kind: 'v2-message', data: JSON.stringify(frame) };
  });

const v2Join: fc.Arbitrary<FuzzFrame> = fc
  .tuple(smallRef, topic, payload, presenceJoin, shortMs)
  .map(([jr, t, p, pres, ms]) => {
    const body = t.startsWith('presence:') ? pres : t === 'room:slowjoin' ? ms : p;
    return { kind: 'v2-join', data: JSON.stringify([jr, jr, t, 'phx_join', body]) };
  });

/** Arrays of 0–7 elements where any position can hold any JSON type. */
const anyField = fc.oneof(anyRef, topic, event, fc.jsonValue({ maxDepth: 1 }));
const v2NearValid: fc.Arbitrary<FuzzFrame> = fc
  .array(anyField, { minLength: 0, maxLength: 7 })
  .map((items) => ({ kind: 'v2-near-valid', data: JSON.stringify(items) }));

/** The right shape with exactly one field of a random type. */
const v2OneBadField: fc.Arbitrary<FuzzFrame> = fc
  .tuple(
    smallRef,
    anyRef,
    topic,
    event,
    payload,
    fc.integer({ min: 0, max: 3 }),
    fc.jsonValue({ maxDepth: 1 }),
  )
  .map(([jr, ref, t, e, p, position, value]) => {
    const frame: unknown[] = [jr, ref, t, e, tame(t, e, p, { ms: 1 })];
    frame[position] = value;
    return { kind: 'v2-one-bad-field', data: JSON.stringify(frame) };
  });

const arbitraryJson: fc.Arbitrary<FuzzFrame> = fc
  .jsonValue({ maxDepth: 3 })
  .map((v) => ({ kind: 'json', data: JSON.stringify(v) }));
const garbageText: fc.Arbitrary<FuzzFrame> = fc
  .string({ maxLength: 40 })
  .map((s) => ({ kind: 'text', data: s }));
const randomBinary: fc.Arbitrary<FuzzFrame> = fc
  .uint8Array({ maxLength: 48 })
  .map((b) => ({ kind: 'binary-random', data: b }));
const rawTextBytes: fc.Arbitrary<FuzzFrame> = fc
  .uint8Array({ minLength: 1, maxLength: 24 })
  .map((b) => ({ kind: 'text-bytes', data: b, rawText: true }));

const asciiField = (max: number) => fc.string({ maxLength: max });

/** Binary pushes with a proper header: mostly exact lengths, sometimes one length off, rarely another kind. */
const v2Binary: fc.Arbitrary<FuzzFrame> = fc
  .tuple(
    fc.oneof(
      { arbitrary: fc.constant(0), weight: 12 },
      { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 },
    ),
    smallRef.map((r) => (r === null ? '' : String(r))),
    asciiField(4),
    fc.oneof(
      { arbitrary: fc.constantFrom(...TOPICS.filter((t) => t !== LONG_TOPIC)), weight: 6 },
      { arbitrary: asciiField(12), weight: 1 },
    ),
    fc.oneof(
      {
        arbitrary: fc.constantFrom(
          'bin',
          'echo',
          'bin_reply_only',
          'boom',
          'broadcast',
          'push',
          'phx_join',
          'phx_leave',
        ),
        weight: 6,
      },
      { arbitrary: asciiField(8), weight: 1 },
    ),
    fc.uint8Array({ maxLength: 32 }),
    fc.oneof(
      { arbitrary: fc.constant(null), weight: 8 },
      {
        arbitrary: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: -3, max: 40 })),
        weight: 2,
      },
    ),
  )
  .map(([kind, jr, ref, t, e, body, skew]) => {
    const fields = [jr, ref, t, e].map((s) => Buffer.from(s, 'utf8'));
    const header = [kind, ...fields.map((f) => Math.min(255, f.length))];
    if (skew !== null) header[skew[0]] = Math.max(0, Math.min(255, header[skew[0]]! + skew[1]));
    const data = Buffer.concat([Buffer.from(header), ...fields, Buffer.from(body)]);
    return { kind: skew === null && kind === 0 ? 'binary-valid' : 'binary-skewed', data };
  });

/** V1 objects, sometimes missing a key or carrying a join_ref. */
const v1Frame: fc.Arbitrary<FuzzFrame> = fc
  .tuple(
    topic,
    event,
    payload,
    anyRef,
    rarely(smallRef, 2),
    rarely(fc.constantFrom('topic', 'event', 'payload', 'ref')),
    shortMs,
    presenceJoin,
  )
  .map(([t, e, p, ref, jr, drop, ms, pres]) => {
    const body = e === 'phx_join' && t.startsWith('presence:') ? pres : tame(t, e, p, ms);
    const frame: Record<string, unknown> = { topic: t, event: e, payload: body, ref };
    if (jr !== null) frame.join_ref = jr;
    if (drop !== null) delete frame[drop];
    return { kind: drop === null ? 'v1-message' : 'v1-missing-key', data: JSON.stringify(frame) };
  });

const v2Frames = fc.oneof(
  { arbitrary: v2Message, weight: 100 },
  { arbitrary: v2Join, weight: 36 },
  { arbitrary: v2NearValid, weight: 6 },
  { arbitrary: v2OneBadField, weight: 5 },
  { arbitrary: arbitraryJson, weight: 3 },
  { arbitrary: garbageText, weight: 2 },
  { arbitrary: randomBinary, weight: 3 },
  { arbitrary: v2Binary, weight: 24 },
  { arbitrary: rawTextBytes, weight: 1 },
);

/** Only frames that decode: this lane's connection lives long and builds up channel state. */
const v2ValidFrames = fc.oneof(
  { arbitrary: v2Message, weight: 10 },
  { arbitrary: v2Join, weight: 4 },
  { arbitrary: v2Binary.filter((f) => f.kind === 'binary-valid'), weight: 3 },
);

const v1Frames = fc.oneof(
  { arbitrary: v1Frame, weight: 60 },
  { arbitrary: arbitraryJson, weight: 2 },
  { arbitrary: garbageText, weight: 1 },
  { arbitrary: v2Message, weight: 1 },
  { arbitrary: randomBinary, weight: 1 },
  { arbitrary: rawTextBytes, weight: 1 },
);

// -------------------------------------------------------------------------------------------
// A fuzzing connection: checks every server frame, answers sync heartbeats
// -------------------------------------------------------------------------------------------

/** Why a server frame is malformed for this vsn, or null when it is fine. */
function serverFrameProblem(vsn: Vsn, data: Buffer, isBinary: boolean): string | null {
  if (isBinary) {
    if (vsn === 'v1') return 'binary frame sent to a V1 client';
    const kind = data[0];
    const count = kind === 0 ? 3 : kind === 1 ? 4 : kind === 2 ? 2 : -1;
    if (count < 0 || data.length < 1 + count) return `binary frame of kind ${kind}`;
    let offset = 1 + count;
    for (let i = 1; i <= count; i++) offset += data[i]!;
    return offset <= data.length ? null : 'binary header longer than the frame';
  }
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    return 'text frame is not JSON';
  }
  if (vsn === 'v2') {
    if (!Array.isArray(value) || value.length !== 5) return 'V2 frame is not a 5-element array';
    const [joinRef, ref, t, e, p] = value as unknown[];
    if (typeof t !== 'string' || typeof e !== 'string' || !isRef(ref) || !isRef(joinRef))
      return 'V2 frame field types';
    if (
      e === 'phx_reply' &&
      (p === null ||
        typeof p !== 'object' ||
        typeof (p as { status?: unknown }).status !== 'string')
    ) {
      return 'reply payload without a status';
    }
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return 'V1 frame is not an object';
  const keys = Object.keys(value).sort().join(',');
  return keys === 'event,payload,ref,topic' ? null : `V1 frame keys ${keys}`;
}

class FuzzConnection {
  readonly closed: Promise<{ code: number; reason: string }>;
  problems: string[] = [];
  received = 0;
  private syncs = new Map<string, () => void>();

  private constructor(
    readonly ws: WebSocket,
    readonly vsn: Vsn,
  ) {
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.received++;
      const problem = serverFrameProblem(vsn, data, isBinary);
      if (problem)
        this.problems.push(
          `${problem}: ${isBinary ? data.toString('hex') : data.toString('utf8').slice(0, 200)}`,
        );
      if (isBinary) return;
      const text = data.toString('utf8');
      if (!text.includes('"sync-')) return;
      const value = JSON.parse(text) as unknown;
      const ref = Array.isArray(value) ? (value as unknown[])[1] : (value as { ref?: unknown }).ref;
      if (typeof ref === 'string') this.syncs.get(ref)?.();
    });
  }

  static async open(url: string, vsn: Vsn): Promise<FuzzConnection> {
    const ws = new WebSocket(url);
    const conn = new FuzzConnection(ws, vsn);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return conn;
  }

  send(frame: FuzzFrame): void {
    if (typeof frame.data === 'string') this.ws.send(frame.data);
    else this.ws.send(frame.data, { binary: !frame.rawText });
  }

  /** A heartbeat round-trip: resolves true on its reply, false if the connection closed first. */
  sync(ref: string): Promise<boolean> {
    const frame =
      this.vsn === 'v2'
        ? JSON.stringify([null, ref, 'phoenix', 'heartbeat', {}])
        : JSON.stringify({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref });
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      this.syncs.set(ref, () => {
        clearTimeout(timer);
        this.syncs.delete(ref);
        resolve(true);
      });
      this.closed.then(
        () => {
          clearTimeout(timer);
          resolve(false);
        },
        () => resolve(false), // closed only resolves
      );
      this.ws.send(frame);
    });
  }
}

// -------------------------------------------------------------------------------------------
// Lanes
// -------------------------------------------------------------------------------------------

interface LaneResult {
  frames: number;
  fatal: number;
  reconnects: number;
  syncs: number;
  received: number;
  kinds: Record<string, number>;
  failures: string[];
  problems: string[];
}

async function runLane(
  name: string,
  url: string,
  vsn: Vsn,
  frames: readonly FuzzFrame[],
  open: FuzzConnection[],
  invariant: () => string | null,
): Promise<LaneResult> {
  const result: LaneResult = {
    frames: 0,
    fatal: 0,
    reconnects: 0,
    syncs: 0,
    received: 0,
    kinds: {},
    failures: [],
    problems: [],
  };
  let conn = await FuzzConnection.open(url, vsn);
  open.push(conn);
  let segment: FuzzFrame[] = [];

  const retire = (c: FuzzConnection): void => {
    result.received += c.received;
    result.problems.push(...c.problems);
  };
  const describeSegment = (): string =>
    segment
      .map(
        (f) =>
          `${f.kind}:${typeof f.data === 'string' ? f.data.slice(0, 120) : Buffer.from(f.data).toString('hex')}`,
      )
      .join(' | ');

  const reconnect = async (): Promise<void> => {
    retire(conn);
    conn = await FuzzConnection.open(url, vsn);
    open.push(conn);
    result.reconnects++;
    segment = [];
  };

  for (const frame of frames) {
    const expected = expectedClose(vsn, frame);
    result.kinds[frame.kind] = (result.kinds[frame.kind] ?? 0) + 1;
    result.frames++;
    segment.push(frame);
    conn.send(frame);
    if (expected !== null) {
      result.fatal++;
      const info = await Promise.race([
        conn.closed,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 5_000)),
      ]);
      if (info === null)
        result.failures.push(
          `[${name} seed ${SEED}] expected close ${expected}, connection stayed open after: ${describeSegment()}`,
        );
      else if (info.code !== expected) {
        result.failures.push(
          `[${name} seed ${SEED}] expected close ${expected}, got ${info.code} "${info.reason}" after: ${describeSegment()}`,
        );
      }
      conn.ws.terminate();
      await reconnect();
    } else if (segment.length >= BATCH) {
      result.syncs++;
      if (!(await conn.sync(`sync-${name}-${result.syncs}`))) {
        const info = await Promise.race([conn.closed, Promise.resolve(null)]);
        result.failures.push(
          `[${name} seed ${SEED}] connection ${info ? `closed ${info.code} "${info.reason}"` : 'stopped answering'} on frames the oracle considers valid: ${describeSegment()}`,
        );
        conn.ws.terminate();
        await reconnect();
      } else {
        const broken = invariant();
        if (broken)
          result.failures.push(`[${name} seed ${SEED}] ${broken} after: ${describeSegment()}`);
        segment = [];
      }
    }
  }
  if (segment.length > 0) {
    result.syncs++;
    if (!(await conn.sync(`sync-${name}-final`)))
      result.failures.push(`[${name} seed ${SEED}] final sync failed after: ${describeSegment()}`);
  }
  retire(conn);
  return result;
}

// -------------------------------------------------------------------------------------------
// The test
// -------------------------------------------------------------------------------------------

describe('fuzzing the WebSocket protocol', () => {
  let app: TestApp;
  const errors: unknown[] = [];
  const onError = (err: unknown): void => {
    errors.push(err);
  };
  const open: FuzzConnection[] = [];

  beforeAll(async () => {
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
    // Lanes send thousands of frames a second: the per-socket message rate (tested on its own in
    // test/ratelimit) would rightly close them as floods.
    app = await startTestApp({ allMounts: { messageRate: false } });
  });

  afterAll(async () => {
    for (const conn of open) conn.ws.terminate();
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    await app.close();
  });

  it(
    `survives ${TOTAL_FRAMES} generated frames (seed ${SEED}) without crashing or leaking`,
    { timeout: 60_000 },
    async () => {
      const lanes: {
        name: string;
        path: string;
        vsn: Vsn;
        count: number;
        frames: fc.Arbitrary<FuzzFrame>;
      }[] = [
        {
          name: 'v2-mixed',
          path: '/defaults/websocket',
          vsn: 'v2',
          count: 3_000,
          frames: v2Frames,
        },
        {
          name: 'v2-valid',
          path: '/defaults/websocket',
          vsn: 'v2',
          count: 2_800,
          frames: v2ValidFrames,
        },
        {
          name: 'v2-limited',
          path: '/limited/websocket',
          vsn: 'v2',
          count: 2_600,
          frames: v2Frames,
        },
        { name: 'v1', path: '/defaults/websocket', vsn: 'v1', count: 1_600, frames: v1Frames },
      ];
      expect(lanes.reduce((sum, lane) => sum + lane.count, 0)).toBe(TOTAL_FRAMES);

      // Between event-loop turns every live channel is exactly one topic subscription, and the
      // session count matches the open connections the gateway knows of.
      const invariant = (): string | null => {
        const f = footprint(app.gateway);
        if (f.channels !== f.subscriptions)
          return `stats.channels ${f.channels} !== subscriptions ${f.subscriptions}`;
        if (f.sockets < 0 || f.channels < 0) return `negative gauges ${JSON.stringify(f)}`;
        return null;
      };

      const started = Date.now();
      const results = await Promise.all(
        lanes.map((lane, i) => {
          const frames = fc.sample(lane.frames, { numRuns: lane.count, seed: SEED + i });
          const url = app.wsUrl(lane.path, lane.vsn === 'v2' ? 'vsn=2.0.0' : 'vsn=1.0.0');
          return runLane(lane.name, url, lane.vsn, frames, open, invariant);
        }),
      );
      const elapsed = Date.now() - started;

      const summary = {
        seed: SEED,
        elapsedMs: elapsed,
        frames: results.reduce((n, r) => n + r.frames, 0),
        fatal: results.reduce((n, r) => n + r.fatal, 0),
        reconnects: results.reduce((n, r) => n + r.reconnects, 0),
        serverFrames: results.reduce((n, r) => n + r.received, 0),
        kinds: results.reduce<Record<string, number>>((acc, r) => {
          for (const [kind, n] of Object.entries(r.kinds)) acc[kind] = (acc[kind] ?? 0) + n;
          return acc;
        }, {}),
        stats: { ...app.gateway.stats },
      };
      console.log(`fuzz summary: ${JSON.stringify(summary)}`);
      const valid = results[1]!;
      // The all-valid lane never lost its connection.
      expect(valid.fatal).toBe(0);
      expect(valid.reconnects).toBe(0);

      expect(summary.frames).toBe(TOTAL_FRAMES);
      expect(results.flatMap((r) => r.failures).slice(0, 10)).toEqual([]);
      expect(results.flatMap((r) => r.problems).slice(0, 10)).toEqual([]);
      expect(errors).toEqual([]);

      // The gateway still serves a new client.
      await heartbeatWorks(app.wsUrl('/defaults/websocket'));

      // Once every client is gone nothing is left behind.
      for (const conn of open) conn.ws.close();
      await Promise.all(open.map((conn) => conn.closed));
      await expectEmpty(app.gateway, 5_000);
      expect(footprint(app.gateway)).toEqual({
        sockets: 0,
        channels: 0,
        presences: 0,
        subscriptions: 0,
        topics: 0,
      });
      expect(app.gateway.stats.longpollSessions).toBe(0);
      expect(errors).toEqual([]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    },
  );
});
