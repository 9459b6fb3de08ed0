/**
 * Helpers for the executor-level acceptance tests (test/genapi/exec-*.test.ts): a gen_api client
 * over raw WebSocket frames that follows concurrent requests by request_id (pushes) and ref
 * (replies), and an environment that owns one real nats-server plus every gateway, worker and
 * client a test starts, and stops them all.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { connect } from '@nats-io/transport-node';
import type { GenApiResponse } from '../../src/genapi/types.js';
import type { ServiceDefinition } from '../../src/worker/define.js';
import type { ServeOptions } from '../../src/worker/nats.js';
import {
  startGenApiApp,
  startWorker,
  type GenApiApp,
  type GenApiAppOptions,
  type Worker,
} from './genapi-app.js';
import { NatsServer } from './nats.js';
import { RawClient } from './ws-client.js';
import { realTime, until, WAIT_MS, within } from './wait.js';

export const TOPIC = 'gen_api:exec';
export const EVENT = 'phoenix_gen_api';

/** The 7-field Response with defaults (a successful sync result of null). */
export function resp(id: unknown, fields: Partial<GenApiResponse> = {}): GenApiResponse {
  return {
    request_id: id,
    result: null,
    success: true,
    error: null,
    async: false,
    has_more: false,
    can_retry: false,
    ...fields,
  };
}

export const errorResp = (id: unknown, error: string, canRetry = false): GenApiResponse =>
  resp(id, { success: false, error, can_retry: canRetry });

export interface Reply {
  status: 'ok' | 'error';
  response: unknown;
}

interface Logged {
  kind: 'push' | 'reply' | 'other';
  /** request_id of a push; ref of a reply. */
  key: unknown;
  payload: unknown;
  at: number;
}

export interface CallResult {
  /** The pushes for this request_id, in arrival order. */
  pushes: GenApiResponse[];
  reply: Reply;
  /** 'push' / 'reply' in the order the frames arrived (for push-before-reply checks). */
  order: ('push' | 'reply')[];
  /** ms from sending to the last awaited frame (performance.now). */
  ms: number;
}

export interface CallOptions {
  /** Pushes to wait for (sync 1, async 2, none 0, …). Default 1. */
  pushes?: number;
  timeoutMs?: number;
}

export interface Request {
  request_id: string;
  service: string;
  request_type: string;
  args?: Record<string, unknown> | null;
  version?: string | null;
  [field: string]: unknown;
}

/**
 * A gen_api client: joins one topic, sends requests as raw Phoenix v2 frames and records every
 * frame it receives. Every push must be `[join_ref, null, topic, "phoenix_gen_api", Response]`
 * and every reply `[join_ref, ref, topic, "phx_reply", {status, response}]`; anything else lands
 * in `unexpected`.
 */
export class GenApiClient {
  readonly log: Logged[] = [];
  readonly unexpected: unknown[] = [];
  private readonly waiters = new Set<() => void>();
  private ref = 1;
  private readonly joinRef = '1';

  private constructor(
    readonly raw: RawClient,
    readonly topic: string,
  ) {
    raw.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        this.unexpected.push(data);
        return;
      }
      const frame = JSON.parse(data.toString('utf8')) as unknown;
      this.record(frame);
      for (const waiter of [...this.waiters]) waiter();
    });
  }

  static async connect(url: string, topic = TOPIC): Promise<GenApiClient> {
    const raw = await RawClient.connect(url);
    const client = new GenApiClient(raw, topic);
    raw.send([client.joinRef, client.joinRef, topic, 'phx_join', {}]);
    const reply = await client.waitReply(client.joinRef, WAIT_MS);
    if (reply.status !== 'ok') throw new Error(`join refused: ${JSON.stringify(reply)}`);
    return client;
  }

  private record(frame: unknown): void {
    const at = performance.now();
    if (!Array.isArray(frame) || frame.length !== 5 || frame[2] !== this.topic) {
      this.unexpected.push(frame);
      return;
    }
    const [joinRef, ref, , event, payload] = frame as [unknown, unknown, string, string, unknown];
    if (event === EVENT && ref === null && joinRef === this.joinRef) {
      this.log.push({ kind: 'push', key: (payload as GenApiResponse).request_id, payload, at });
    } else if (event === 'phx_reply' && typeof ref === 'string') {
      this.log.push({ kind: 'reply', key: ref, payload, at });
    } else {
      this.unexpected.push(frame);
      this.log.push({ kind: 'other', key: null, payload: frame, at });
    }
  }

  /** Resolves once `probe` returns a value (checked on every frame), or rejects after timeoutMs. */
  private wait<T>(probe: () => T | undefined, timeoutMs: number, label: string): Promise<T> {
    const now = probe();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = probe();
        if (value === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private waitReply(ref: string, timeoutMs: number): Promise<Reply> {
    return this.wait(
      () => {
        const entry = this.log.find((e) => e.kind === 'reply' && e.key === ref);
        return entry ? (entry.payload as Reply) : undefined;
      },
      timeoutMs,
      `the reply to ref ${ref}`,
    );
  }

  /** The pushes received so far for request_id `id`. */
  pushesFor(id: unknown): GenApiResponse[] {
    return this.log
      .filter((e) => e.kind === 'push' && e.key === id)
      .map((e) => e.payload as GenApiResponse);
  }

  /** Sends a request; returns its ref. */
  send(request: Request): string {
    const ref = String(++this.ref);
    this.raw.send([this.joinRef, ref, this.topic, EVENT, request]);
    return ref;
  }

  /** Sends a raw event on the topic (e.g. the cancel event); returns the ref. */
  sendEvent(event: string, payload: unknown): string {
    const ref = String(++this.ref);
    this.raw.send([this.joinRef, ref, this.topic, event, payload]);
    return ref;
  }

  /** Waits for the reply to `ref` and `pushes` pushes for `id`. */
  async collect(
    id: unknown,
    ref: string,
    sentAt: number,
    options: CallOptions = {},
  ): Promise<CallResult> {
    const count = options.pushes ?? 1;
    const timeoutMs = options.timeoutMs ?? WAIT_MS;
    const reply = await this.waitReply(ref, timeoutMs);
    const pushes = await this.wait(
      () => {
        const found = this.pushesFor(id);
        return found.length >= count ? found : undefined;
      },
      timeoutMs,
      `${count} push(es) for ${String(id)}`,
    );
    const frames = this.log.filter(
      (e) => (e.kind === 'push' && e.key === id) || (e.kind === 'reply' && e.key === ref),
    );
    const pushFrames = frames.filter((e) => e.kind === 'push');
    const replyAt = frames.find((e) => e.kind === 'reply')!.at;
    const last = Math.max(replyAt, count > 0 ? pushFrames[count - 1]!.at : replyAt);
    return {
      pushes,
      reply,
      order: frames.map((e) => e.kind as 'push' | 'reply'),
      ms: last - sentAt,
    };
  }

  /** Sends a request and waits for its reply and `pushes` pushes. */
  async call(request: Request, options: CallOptions = {}): Promise<CallResult> {
    const sentAt = performance.now();
    const ref = this.send(request);
    return this.collect(request.request_id, ref, sentAt, options);
  }

  /** Sends a request without waiting; `done()` collects it later. */
  start(
    request: Request,
    options: CallOptions = {},
  ): { ref: string; sentAt: number; done: () => Promise<CallResult> } {
    const sentAt = performance.now();
    const ref = this.send(request);
    return { ref, sentAt, done: () => this.collect(request.request_id, ref, sentAt, options) };
  }

  close(): void {
    this.raw.close();
  }
}

/** Waits for `ms` or until `signal` aborts (then rejects, like a handler giving up at its deadline). */
export function sleepOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Hangs past the handler's deadline: waits until the SDK aborts the signal, then `graceMs` more
 * before failing, so the gateway's own timeout certainly fires first (a transport timeout).
 */
export async function hang(signal: AbortSignal, graceMs = 250): Promise<never> {
  await sleepOrAbort(60_000, signal).catch(() => undefined);
  // The worker SDK and the gateway each time the call out on their own timers; the handler must
  // still be silent when the gateway's fires, or the call would end as a function error.
  await realTime(graceMs, "the gateway's request timeout must fire before this handler fails");
  throw new Error('gave up after the deadline');
}

export interface GatewayOptions extends GenApiAppOptions {
  /**
   * Discovery pings only once, at start (the harness pings every 200 ms otherwise): configs then
   * arrive only by push, which makes push acknowledgements deterministic.
   */
  quietDiscovery?: boolean;
}

/**
 * One real nats-server for a test file, and every gateway, worker and client started through it;
 * `reset()` (afterEach) stops all of them, `dispose()` (afterAll) the server too.
 */
export class ExecEnv {
  private apps: GenApiApp[] = [];
  private workers: Worker[] = [];
  private clients: GenApiClient[] = [];

  private constructor(readonly nats: NatsServer) {}

  static async start(): Promise<ExecEnv> {
    return new ExecEnv(await NatsServer.start());
  }

  get url(): string {
    return this.nats.url;
  }

  /** A gateway on this NATS (or embedded when `embedded`), with the gen_api channel on /socket. */
  async gateway(options: GatewayOptions = {}, embedded = false): Promise<GenApiApp> {
    const { quietDiscovery, ...rest } = options;
    const natsOptions = quietDiscovery
      ? {
          ...rest.natsOptions,
          discovery: { intervalMs: 600_000, ttlMs: 1_200_000, pingWaitMs: 100 },
        }
      : rest.natsOptions;
    const app = await startGenApiApp({
      ...rest,
      ...(embedded ? {} : { nats: this.url }),
      ...(natsOptions ? { natsOptions } : {}),
    });
    this.apps.push(app);
    return app;
  }

  async worker(service: ServiceDefinition, options: Partial<ServeOptions> = {}): Promise<Worker> {
    const worker = await startWorker(service, this.url, { drainTimeoutMs: 1_000, ...options });
    this.workers.push(worker);
    return worker;
  }

  async client(
    app: GenApiApp,
    query = 'user_id=u1&device_id=d1',
    topic = TOPIC,
  ): Promise<GenApiClient> {
    const client = await GenApiClient.connect(app.wsUrl(query), topic);
    this.clients.push(client);
    return client;
  }

  async reset(): Promise<void> {
    const clients = this.clients;
    const workers = this.workers;
    const apps = this.apps;
    this.clients = [];
    this.workers = [];
    this.apps = [];
    for (const client of clients) client.close();
    await Promise.all(
      workers.map(async (worker) => {
        if (worker.nc.isClosed()) return;
        await within(worker.running.stop(), 'a worker to stop', 3_000).catch(() => undefined);
        await worker.nc.close().catch(() => undefined);
      }),
    );
    await Promise.all(apps.map((app) => app.close().catch(() => undefined)));
  }

  async dispose(): Promise<void> {
    await this.reset();
    await this.nats.dispose();
  }
}

/** Waits until `app` resolves the function and knows `instances` live instances of its service. */
export async function ready(
  app: GenApiApp,
  service: string,
  requestType: string,
  instances = 1,
  timeoutMs = 10_000,
): Promise<void> {
  await until(
    () =>
      app.genApi.registry.resolve(service, requestType, null).ok &&
      (app.genApi.nats?.bus.instances(service).length ?? 0) === instances,
    `${service}.${requestType} with ${instances} instance(s)`,
    { timeoutMs },
  );
}

/** Live instance count of a service on a gateway. */
export function instanceCount(app: GenApiApp, service: string): number {
  return app.genApi.nats?.bus.instances(service).length ?? 0;
}

/** Counts strings. */
export function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of values) out[value] = (out[value] ?? 0) + 1;
  return out;
}

/**
 * The ExecEnv lifecycle every exec describe block shares: one nats-server for the block, and
 * everything a test started stopped after it. Returns a handle that forwards to the live env.
 */
export function useExecEnv(): ExecEnv {
  let current: ExecEnv | null = null;
  beforeAll(async () => {
    current = await ExecEnv.start();
  });
  afterEach(async () => {
    await current?.reset();
  });
  afterAll(async () => {
    await current?.dispose();
  });
  return new Proxy(Object.create(ExecEnv.prototype) as ExecEnv, {
    get(_target, property) {
      if (!current) throw new Error('useExecEnv: the environment is used outside a test');
      const value: unknown = Reflect.get(current, property, current);
      return typeof value === 'function'
        ? (value as (...args: unknown[]) => unknown).bind(current)
        : value;
    },
  });
}

/** Whether `err` (or its cause) is NATS's "no responders". */
function isNoResponders(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause)
    if (/no responders/i.test(e.message)) return true;
  return false;
}

/**
 * Until nats-server has dropped the subscriptions of a dead instance (it notices a closed or
 * reset connection on its own): a request on the instance's own subjects gets "no responders".
 * Before that, a request sent to the instance may be routed to the dying connection and lost.
 */
export async function subscriptionsGone(url: string, instanceId: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    await until(async () => {
      try {
        await nc.request(`genapi.inst.${instanceId}.probe`, undefined, { timeout: 500 });
        return false;
      } catch (err) {
        return isNoResponders(err);
      }
    }, `nats-server to drop the subscriptions of ${instanceId}`);
  } finally {
    await nc.close();
  }
}
