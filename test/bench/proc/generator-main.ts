/**
 * A load-generator process. The bench process starts several (one process holds at most ~19k
 * sockets on this box) and drives them over IPC: open sockets from a given source address, run
 * open-loop requests, subscribe and publish for fan-out, run streams, connection cycles. Latencies
 * go into HDR histograms that are sent back encoded and merged.
 */
import { connect as natsConnect } from '@nats-io/transport-node';
import WebSocket from 'ws';
import { realTime } from '../../support/wait.js';
import { emit, serveCommands } from '../lib/ipc.js';
import { encode, latencyHistogram, recordMs } from '../lib/hdr.js';
import { openLoop, settle } from '../lib/open-loop.js';
import { clientTextFrame, PhxSocket, pool, type ReplyPayload } from '../lib/phx-socket.js';

const GEN = process.env.BENCH_GENERATOR_ID ?? String(process.pid);
const EVENT = 'phoenix_gen_api';
const epochMs = (): number => performance.timeOrigin + performance.now();

/** Sockets by pool name ("clients", "publishers", ...). */
const pools = new Map<string, PhxSocket[]>();
let heartbeat: NodeJS.Timeout | null = null;

interface GenApiPush {
  request_id: string;
  success: boolean;
  error: unknown;
  result: unknown;
  has_more: boolean;
}

/** gen_api pushes by request_id, and broadcast deliveries, from every socket. */
const pushWaiters = new Map<string, (push: GenApiPush) => void>();
let deliveries = 0;
let fanout = latencyHistogram();
/** Bytes received by raw-sink sockets (counted, not parsed). */
let sunk = 0;
const countSunk = (bytes: number): void => {
  sunk += bytes;
};

function onPush(_topic: string, event: string, payload: unknown): void {
  if (event === EVENT) {
    const push = payload as GenApiPush;
    pushWaiters.get(push.request_id)?.(push);
  } else if (event === 'msg') {
    deliveries++;
    const t = (payload as { t?: unknown }).t;
    if (typeof t === 'number') recordMs(fanout, epochMs() - t);
  }
}

function sockets(name: string): PhxSocket[] {
  let list = pools.get(name);
  if (!list) pools.set(name, (list = []));
  return list;
}

/** Every socket sends a heartbeat each `everyMs`, spread over the period (one timer in all). */
function startHeartbeats(everyMs: number): void {
  if (heartbeat) return;
  const tickMs = 1000;
  let cursor = 0;
  heartbeat = setInterval(() => {
    const all = [...pools.values()].flat();
    if (all.length === 0) return;
    const perTick = Math.ceil((all.length * tickMs) / everyMs);
    for (let i = 0; i < perTick; i++) all[(cursor + i) % all.length]!.heartbeat();
    cursor = (cursor + perTick) % all.length;
  }, tickMs);
}

interface ConnectArgs {
  pool: string;
  /** `{i}` is replaced by the socket's index (plus `offset`), as in `topic`; `{token}` as `tokens` says. */
  url: string;
  count: number;
  /** `{token}` in `url` is replaced by `tokens[i]` (URI-encoded), i counting this call's sockets from 0: a credential per socket. */
  tokens?: string[];
  localAddress?: string;
  concurrency?: number;
  /** `{i}` is replaced by the socket's index (plus `offset`). */
  topic: string;
  /** Topics cycle through `topics` distinct values: `{i}` becomes index % topics. */
  topics?: number;
  offset?: number;
  joinPayload?: unknown;
  heartbeatMs?: number;
  /** After the join, only count the bytes the server sends (PhxSocket.rawSink; `sunk` command). */
  sink?: boolean;
}

async function connectSockets(args: ConnectArgs) {
  const list = sockets(args.pool);
  const joinLatency = latencyHistogram();
  let failed = 0;
  const errors: string[] = [];
  const started = performance.now();
  await pool(args.count, args.concurrency ?? 100, async (i) => {
    const t0 = performance.now();
    try {
      const index = (args.offset ?? 0) + i;
      // `{i}` in the URL too (e.g. a distinct user_id per socket).
      let url = args.url.includes('{i}') ? args.url.replace('{i}', String(index)) : args.url;
      if (args.tokens) url = url.replace('{token}', encodeURIComponent(args.tokens[i] ?? ''));
      const socket = await PhxSocket.connect(
        url,
        args.localAddress ? { localAddress: args.localAddress } : {},
      );
      socket.onPush = onPush;
      const topic = args.topic.replace('{i}', String(args.topics ? index % args.topics : index));
      const reply = await socket.join(topic, args.joinPayload ?? {});
      if (reply.status !== 'ok') throw new Error(`join ${topic}: ${JSON.stringify(reply)}`);
      recordMs(joinLatency, performance.now() - t0);
      if (args.sink) socket.rawSink(countSunk);
      list.push(socket);
    } catch (err) {
      failed++;
      if (errors.length < 5) errors.push((err as Error).message);
    }
  });
  const wallMs = performance.now() - started;
  if (args.heartbeatMs) startHeartbeats(args.heartbeatMs);
  return { joined: args.count - failed, failed, errors, wallMs, joinLatency: encode(joinLatency) };
}

interface RequestArgs {
  pool: string;
  rate: number;
  durationMs: number;
  service: string;
  requestType: string;
  args?: Record<string, unknown>;
  timeoutMs?: number;
  /** The error push expected instead of a success (timing error replies, e.g. no responders). */
  expectError?: string;
}

/** Open-loop gen_api requests over a pool's sockets; latency from due time to the phx_reply. */
async function requests(args: RequestArgs) {
  const list = sockets(args.pool).filter((socket) => !socket.closed);
  if (list.length === 0) throw new Error(`no open sockets in pool ${args.pool}`);
  const histogram = latencyHistogram();
  let ok = 0;
  let errors = 0;
  let outstanding = 0;
  const errorSamples: string[] = [];
  const error = (text: string) => {
    errors++;
    if (errorSamples.length < 5) errorSamples.push(text);
  };
  const started = performance.now();
  const sent = await openLoop(args.rate, args.durationMs, (dueAt, index) => {
    const socket = list[index % list.length]!;
    const requestId = `${GEN}-${index}`;
    let push: GenApiPush | null = null;
    outstanding++;
    pushWaiters.set(requestId, (p) => {
      push = p;
    });
    socket.push(
      EVENT,
      {
        request_id: requestId,
        service: args.service,
        request_type: args.requestType,
        args: args.args ?? {},
      },
      (reply: ReplyPayload) => {
        outstanding--;
        pushWaiters.delete(requestId);
        const received = push;
        const expected =
          args.expectError === undefined
            ? received?.success === true
            : received?.success === false && received.error === args.expectError;
        if (reply.status === 'ok' && expected) {
          ok++;
          recordMs(histogram, performance.now() - dueAt);
        } else error(`${reply.status}: ${JSON.stringify(received?.error ?? reply.response)}`);
      },
    );
  });
  const sendMs = performance.now() - started;
  const drained = await settle(() => outstanding === 0, args.timeoutMs ?? 10_000);
  if (!drained) for (let i = 0; i < outstanding; i++) error('timeout');
  return { sent, ok, errors, errorSamples, sendMs, histogram: encode(histogram) };
}

/** Open-loop raw NATS request/reply (the baseline of gen_api requests). */
async function natsRequests(args: {
  url: string;
  subject: string;
  rate: number;
  durationMs: number;
  payload: string;
  timeoutMs?: number;
}) {
  const nc = await natsConnect({ servers: args.url, name: `bench generator ${GEN}` });
  const histogram = latencyHistogram();
  const data = new TextEncoder().encode(args.payload);
  let ok = 0;
  let errors = 0;
  let outstanding = 0;
  const sent = await openLoop(args.rate, args.durationMs, (dueAt) => {
    outstanding++;
    nc.request(args.subject, data, { timeout: args.timeoutMs ?? 10_000 }).then(
      () => {
        outstanding--;
        ok++;
        recordMs(histogram, performance.now() - dueAt);
      },
      () => {
        outstanding--;
        errors++;
      },
    );
  });
  await settle(() => outstanding === 0, (args.timeoutMs ?? 10_000) + 1000);
  await nc.close();
  return { sent, ok, errors, histogram: encode(histogram) };
}

/** Open-loop frames to a raw `ws` echo server over `count` sockets (the WebSocket baseline). */
async function echoRequests(args: {
  url: string;
  count: number;
  rate: number;
  durationMs: number;
  localAddress?: string;
  timeoutMs?: number;
}) {
  const histogram = latencyHistogram();
  const dues = new Map<number, number>();
  let ok = 0;
  const list: WebSocket[] = [];
  await pool(args.count, 50, async () => {
    const ws = new WebSocket(args.url, {
      perMessageDeflate: false,
      ...(args.localAddress ? { localAddress: args.localAddress } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('message', (data: Buffer) => {
      const id = Number((JSON.parse(data.toString('utf8')) as unknown[])[1]);
      const due = dues.get(id);
      if (due === undefined) return;
      dues.delete(id);
      ok++;
      recordMs(histogram, performance.now() - due);
    });
    list.push(ws);
  });
  const payload = { request_id: '', service: 'bench', request_type: 'echo', args: {} };
  const sent = await openLoop(args.rate, args.durationMs, (dueAt, index) => {
    dues.set(index, dueAt);
    list[index % list.length]!.send(
      JSON.stringify(['1', String(index), 'gen_api', EVENT, payload]),
    );
  });
  await settle(() => dues.size === 0, args.timeoutMs ?? 10_000);
  const errors = dues.size;
  for (const ws of list) ws.terminate();
  return { sent, ok, errors, histogram: encode(histogram) };
}

/**
 * The idle-heartbeat baseline: a heartbeat frame to a raw `ws` echo server `perSecond` times a
 * second over `count` sockets, sent in one burst each second like the generators' heartbeats.
 */
async function echoBursts(args: {
  url: string;
  count: number;
  perSecond: number;
  durationMs: number;
  localAddress?: string;
}) {
  const list: WebSocket[] = [];
  let received = 0;
  await pool(args.count, 50, async () => {
    const ws = new WebSocket(args.url, {
      perMessageDeflate: false,
      ...(args.localAddress ? { localAddress: args.localAddress } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('message', () => void received++);
    list.push(ws);
  });
  const frame = JSON.stringify([null, '1', 'phoenix', 'heartbeat', {}]);
  let sent = 0;
  for (let second = 0; second < args.durationMs / 1000; second++) {
    for (let i = 0; i < args.perSecond; i++) list[(sent + i) % list.length]!.send(frame);
    sent += args.perSecond;
    await realTime(1000, 'pacing: one burst a second, as the heartbeats come');
  }
  await settle(() => received >= sent, 5_000);
  for (const ws of list) ws.terminate();
  return { sent, received };
}

/** Open-loop pushes of `pub` (broadcasts, timed by subscribers) or another event (`echo`), timed to the reply. */
async function publish(args: {
  pool: string;
  rate: number;
  durationMs: number;
  bytes?: number;
  /** The event pushed (default `pub`; `echo` for the demo room's echo round trips). */
  event?: string;
}) {
  const list = sockets(args.pool).filter((socket) => !socket.closed);
  const filler = 'x'.repeat(Math.max(0, (args.bytes ?? 100) - 40));
  const event = args.event ?? 'pub';
  const histogram = latencyHistogram();
  let ok = 0;
  let errors = 0;
  const sent = await openLoop(args.rate, args.durationMs, (dueAt, index) => {
    list[index % list.length]!.push(event, { t: epochMs(), d: filler }, (reply) => {
      if (reply.status === 'ok') {
        ok++;
        recordMs(histogram, performance.now() - dueAt);
      } else errors++;
    });
  });
  await settle(() => ok + errors >= sent, 10_000);
  return { sent, ok, errors, histogram: encode(histogram) };
}

function takeFanout(reset: boolean) {
  const result = { deliveries, histogram: encode(fanout) };
  if (reset) {
    deliveries = 0;
    fanout.destroy();
    fanout = latencyHistogram();
  }
  return result;
}

interface StreamArgs {
  pool: string;
  count: number;
  chunks: number;
  intervalMs: number;
  /** Streams cancelled (the first ones), and when (ms after they all started). */
  cancel: number;
  cancelAtMs: number;
  timeoutMs: number;
}

/** Concurrent streams: every chunk checked for order and completeness; some cancelled. */
async function streams(args: StreamArgs) {
  const list = sockets(args.pool).filter((socket) => !socket.closed);
  const histogram = latencyHistogram();
  const state = new Map<string, { next: number; done: boolean; cancelled: boolean }>();
  let outOfOrder = 0;
  let chunksReceived = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  const cancelSentAt: Record<string, number> = {};
  for (let i = 0; i < args.count; i++) {
    const requestId = `${GEN}-s${i}`;
    const entry = { next: 1, done: false, cancelled: false };
    state.set(requestId, entry);
    let started = false;
    pushWaiters.set(requestId, (push) => {
      if (!started) {
        started = true; // "init"
        return;
      }
      if (!push.success) {
        if (!entry.cancelled) {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(JSON.stringify(push.error));
        }
        entry.done = true;
        return;
      }
      const chunk = push.result as { seq?: number; t?: number; result?: unknown } | null;
      if (chunk && typeof chunk.seq === 'number') {
        chunksReceived++;
        if (chunk.seq !== entry.next) outOfOrder++;
        entry.next = chunk.seq + 1;
        if (typeof chunk.t === 'number') recordMs(histogram, epochMs() - chunk.t);
      }
      if (!push.has_more) entry.done = true;
    });
    list[i % list.length]!.push(EVENT, {
      request_id: requestId,
      service: 'bench',
      request_type: 'stream',
      args: { chunks: args.chunks, interval_ms: args.intervalMs },
    });
  }
  setTimeout(() => {
    for (let i = 0; i < args.cancel; i++) {
      const requestId = `${GEN}-s${i}`;
      const entry = state.get(requestId)!;
      if (entry.done) continue;
      entry.cancelled = true;
      cancelSentAt[requestId] = epochMs();
      list[i % list.length]!.push('phoenix_gen_api_cancel', { request_id: requestId });
    }
  }, args.cancelAtMs);
  await settle(() => [...state.values()].every((entry) => entry.done), args.timeoutMs);
  let completed = 0;
  let incomplete = 0;
  for (const [requestId, entry] of state) {
    pushWaiters.delete(requestId);
    if (entry.cancelled) continue;
    if (entry.done && entry.next === args.chunks + 1) completed++;
    else incomplete++;
  }
  return {
    completed,
    incomplete,
    cancelled: Object.keys(cancelSentAt).length,
    outOfOrder,
    chunksReceived,
    errors,
    errorSamples,
    cancelSentAt,
    histogram: encode(histogram),
  };
}

/** connect → join → `requests` sync requests → leave → disconnect, `count` times, `concurrency` at once. */
async function cycles(args: {
  url: string;
  count: number;
  concurrency: number;
  topic: string;
  requests: number;
  localAddresses?: string[];
}) {
  let done = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  const started = performance.now();
  // Source addresses in rotation: each holds ~28k ports, and closed sockets linger in TIME_WAIT.
  const addresses = args.localAddresses ?? [];
  const histogram = latencyHistogram();
  await pool(args.count, args.concurrency, async (i) => {
    const t0 = performance.now();
    try {
      const localAddress = addresses.length > 0 ? addresses[i % addresses.length] : undefined;
      const socket = await PhxSocket.connect(args.url, localAddress ? { localAddress } : {});
      socket.onPush = onPush;
      const joined = await socket.join(args.topic, {});
      if (joined.status !== 'ok') throw new Error(`join: ${JSON.stringify(joined)}`);
      for (let r = 0; r < args.requests; r++) {
        const requestId = `${GEN}-c${i}-${r}`;
        const push = new Promise<GenApiPush>((resolve) => pushWaiters.set(requestId, resolve));
        const reply = await new Promise<ReplyPayload>((resolve) =>
          socket.push(
            EVENT,
            { request_id: requestId, service: 'bench', request_type: 'echo', args: { i, r } },
            resolve,
          ),
        );
        const result = await push;
        pushWaiters.delete(requestId);
        if (reply.status !== 'ok' || !result.success)
          throw new Error(`request: ${JSON.stringify(result.error ?? reply)}`);
      }
      await socket.leave();
      await socket.close();
      done++;
      recordMs(histogram, performance.now() - t0);
    } catch (err) {
      errors++;
      if (errorSamples.length < 5) errorSamples.push((err as Error).message);
    }
  });
  return {
    done,
    errors,
    errorSamples,
    wallMs: performance.now() - started,
    histogram: encode(histogram),
  };
}

interface Loop {
  running: boolean;
  /** Requests answered since the last take. */
  completed: number;
  /** Batches sent and not yet wholly answered. */
  outstanding: number;
  /** When the last batch was wholly answered (performance.now()). */
  answeredAt: number;
  histogram: ReturnType<typeof latencyHistogram>;
  /** Each socket's bytes received past its last whole batch of answers (0 when aligned). */
  remainders: (() => number)[];
}
let loop: Loop | null = null;

/**
 * A closed loop over a pool's (joined) sockets: each sends a batch of `batch` fixed frames in one
 * write and, as soon as every answer to it arrived, the same batch again, until `loopStop`. Frame
 * k is `[join_ref, "L<k>", topic, event, payload]` (a `request_id` in the payload becomes one per
 * socket and frame), encoded and masked once; answers are counted by their bytes, never parsed,
 * so a batch costs this process a socket write and a read or two: the server's work is the
 * limit. Each socket first sends its batch twice parsed (every reply ok and, for gen_api, every
 * push a success), and both must be answered with the same number of bytes: that size then
 * delimits the answers.
 */
async function loopStart(args: {
  pool: string;
  event: string;
  payload: Record<string, unknown>;
  batch?: number;
}) {
  if (loop) throw new Error('a closed loop is already running');
  const list = sockets(args.pool).filter((socket) => !socket.closed);
  if (list.length === 0) throw new Error(`no open sockets in pool ${args.pool}`);
  const batch = args.batch ?? 1;
  const prepared = await Promise.all(
    list.map(async (socket, i) => {
      const frames = Array.from({ length: batch }, (_, k) => {
        const requestId = 'request_id' in args.payload ? `${GEN}-loop-${i}-${k}` : null;
        const payload =
          requestId === null ? args.payload : { ...args.payload, request_id: requestId };
        const ref = `L${k}`;
        const text = JSON.stringify([socket.joinRef, ref, socket.topic, args.event, payload]);
        return { ref, requestId, text };
      });
      const sizes: number[] = [];
      for (let attempt = 0; attempt < 2; attempt++) {
        let bytes = 0;
        const untap = socket.tapBytes((n) => (bytes += n));
        const answers = await Promise.all(
          frames.map(async ({ ref, requestId, text }) => {
            const push =
              requestId === null
                ? null
                : new Promise<GenApiPush>((resolve) => pushWaiters.set(requestId, resolve));
            const reply = await socket.request(text, ref);
            const pushed = push === null ? null : await push;
            if (requestId !== null) pushWaiters.delete(requestId);
            return { reply, pushed };
          }),
        );
        untap();
        for (const { reply, pushed } of answers)
          if (reply.status !== 'ok' || (pushed !== null && !pushed.success))
            throw new Error(
              `closed loop on ${socket.topic}: ${JSON.stringify(pushed?.error ?? reply)}`,
            );
        sizes.push(bytes);
      }
      if (sizes[0] !== sizes[1])
        throw new Error(`closed loop on ${socket.topic}: answers of ${sizes.join(' and ')} bytes`);
      const wire = Buffer.concat(frames.map(({ text }) => clientTextFrame(text)));
      return { socket, wire, answerBytes: sizes[0]! };
    }),
  );
  const state: Loop = {
    running: true,
    completed: 0,
    outstanding: 0,
    answeredAt: performance.now(),
    histogram: latencyHistogram(),
    remainders: [],
  };
  loop = state;
  for (const { socket, wire, answerBytes } of prepared) {
    let pending = 0;
    let sentAt = 0;
    const send = () => {
      sentAt = performance.now();
      state.outstanding++;
      socket.writeRaw(wire);
    };
    socket.rawSink((bytes) => {
      pending += bytes;
      while (pending >= answerBytes) {
        pending -= answerBytes;
        state.outstanding--;
        state.completed += batch;
        state.answeredAt = performance.now();
        recordMs(state.histogram, state.answeredAt - sentAt);
        if (state.running) send();
      }
    });
    state.remainders.push(() => pending);
    send();
  }
  return {
    sockets: prepared.length,
    batch,
    answerBytes: [...new Set(prepared.map((entry) => entry.answerBytes))],
    requestBytes: [...new Set(prepared.map((entry) => entry.wire.length))],
  };
}

/** Answers completed (and their latency) since the last take. */
function loopTake({ reset }: { reset: boolean }) {
  if (!loop) throw new Error('no closed loop is running');
  const result = { completed: loop.completed, histogram: encode(loop.histogram) };
  if (reset) {
    loop.completed = 0;
    loop.histogram.destroy();
    loop.histogram = latencyHistogram();
  }
  return result;
}

/** Stops resending and waits for the answers still due; `lost` = batches never wholly answered. */
async function loopStop() {
  if (!loop) throw new Error('no closed loop is running');
  const state = loop;
  state.running = false;
  // Every answer, or none for a second (a socket that got something else never ends aligned).
  await settle(
    () => state.outstanding === 0 || performance.now() - state.answeredAt > 1000,
    10_000,
  );
  state.histogram.destroy();
  loop = null;
  // A socket whose bytes do not end on a batch's answers got something else (an error, a
  // rate-limit reply): its count is off, and it is reported.
  const misaligned = state.remainders.filter((remainder) => remainder() !== 0).length;
  return { lost: state.outstanding, misaligned };
}

async function closePool(args: { pool: string }) {
  const list = sockets(args.pool);
  pools.delete(args.pool);
  await pool(list.length, 500, async (i) => {
    await list[i]!.close();
  });
  if (pools.size === 0 && heartbeat) {
    clearInterval(heartbeat);
    heartbeat = null;
  }
  return { closed: list.length };
}

serveCommands(
  {
    connect: (args: ConnectArgs) => connectSockets(args),
    requests: (args: RequestArgs) => requests(args),
    natsRequests: (args: Parameters<typeof natsRequests>[0]) => natsRequests(args),
    echoRequests: (args: Parameters<typeof echoRequests>[0]) => echoRequests(args),
    echoBursts: (args: Parameters<typeof echoBursts>[0]) => echoBursts(args),
    publish: (args: Parameters<typeof publish>[0]) => publish(args),
    fanout: ({ reset }: { reset: boolean }) => takeFanout(reset),
    sunk: ({ reset }: { reset: boolean }) => {
      const count = sunk;
      if (reset) sunk = 0;
      return count;
    },
    streams: (args: StreamArgs) => streams(args),
    cycles: (args: Parameters<typeof cycles>[0]) => cycles(args),
    loopStart: (args: Parameters<typeof loopStart>[0]) => loopStart(args),
    loopTake: (args: { reset: boolean }) => loopTake(args),
    loopStop: () => loopStop(),
    close: (args: { pool: string }) => closePool(args),
    open: ({ pool: name }: { pool: string }) =>
      sockets(name).filter((socket) => !socket.closed).length,
  },
  async () => {
    for (const name of [...pools.keys()]) await closePool({ pool: name });
  },
);

emit('ready', { pid: process.pid });
