import { headers as natsHeaders, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { withDeadline } from '../util/deadline.js';
import { sleep } from '../util/sleep.js';
import { Svcm, type Service, type ServiceMsg } from '@nats-io/services';
import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.js';
import {
  DEFAULT_STREAM_CREDIT,
  ERROR_CODES,
  H,
  META,
  PROTOCOL_VERSION,
  QUEUE_GROUP,
} from '../nats/headers.js';
import { readHeaders, type HeaderValues } from '../nats/header-reader.js';
import { OutboundHeaders } from '../nats/outbound-headers.js';
import { DEFAULT_PREFIX, Subjects } from '../nats/subjects.js';
import type { PushConfigMessage, PushAck } from '../nats/messages.js';
import type { RequestMeta } from './context.js';
import type { ResolvedFunction, ServiceDefinition } from './define.js';
import { CallSignal, runAuthorize, runCall, runStream } from './runtime.js';
import { startWorkerSpan, type WorkerSpan } from './trace.js';
import { traceLogFields } from '../nats/trace-otel.js';
import type { CreditStream, StreamEvent, StreamIO } from './stream.js';
import { natsBroadcaster, PushEncoder, type Broadcaster } from './pushes.js';
import { CancelledError, InvalidArgumentError } from '../errors.js';
import {
  Lifecycle,
  RECONNECT_LOG_INTERVAL_MS,
  watchConnection,
  WorkerClosedError,
  type WorkerState,
  type WorkerStateListener,
} from './lifecycle.js';
import {
  outcomeOf,
  type CallOutcome,
  type ServeObserver,
  type WorkerMetrics,
  type WorkerMetricsOptions,
} from './observer.js';
import {
  AUTH_HEADER,
  AUTH_METADATA,
  MIN_PUSH_TOKEN_LENGTH,
  NONCE_HEADER,
  PeerAuth,
} from '../nats/peer-auth.js';

/** The signer for `pushToken`, or null without one; a short token is refused. */
function peerAuth(token: string | null | undefined): PeerAuth | null {
  if (token === null || token === undefined) return null;
  if (token.length < MIN_PUSH_TOKEN_LENGTH)
    throw new InvalidArgumentError(
      `pushToken must be at least ${MIN_PUSH_TOKEN_LENGTH} characters (it is an HMAC key)`,
    );
  return new PeerAuth(token);
}

/** Options of `serve`. */
export interface ServeOptions {
  /** A connected NATS client (`connect()` from `@nats-io/transport-node`). */
  nats: NatsConnection;
  /** Subject prefix shared with the gateways. Default "genapi". */
  prefix?: string;
  /**
   * The deployment's push token (`genApi.pushToken` on the gateways, at least 16 characters):
   * config pushes, pull answers and the discovery metadata are signed with it, so gateways accept
   * this instance's config and version (protocol/nats.md §10). The token itself is never sent.
   */
  pushToken?: string | null;
  /** Push the config to every gateway on start. Default true. */
  pushOnStart?: boolean;
  /** How long a push collects gateway acknowledgements. Default 1000 ms. */
  pushTimeoutMs?: number;
  /** A stream that waits this long for the gateway's credit is cancelled. Default 30 000 ms. */
  creditTimeoutMs?: number;
  /**
   * How long `drain()`/`stop()` lets in-flight calls and streams finish; then calls are aborted
   * (`ctx.signal`) and streams end with an error. Default 10 000 ms.
   */
  drainTimeoutMs?: number;
  /**
   * Push the config to every gateway again when the NATS connection comes back. Gateways reconnect
   * at their own pace: a push no gateway acknowledged is tried again after each of
   * `SERVE_DEFAULTS.reconnectPushRetryMs` (0.25 s … 4 s) until one does. Default true.
   */
  pushOnReconnect?: boolean;
  /**
   * While NATS is down, "still reconnecting to NATS" is logged at most this often (the loss and
   * the return are logged at once). Default 5 000 ms.
   */
  reconnectLogIntervalMs?: number;
  /** Called on every state change (from `starting` on); the same as `running.onStateChange`. */
  onStateChange?: WorkerStateListener;
  /**
   * Prometheus metrics (`gen_gateway_worker_*`) in a registry, optionally served over HTTP:
   * `{ port: 9464 }`. Default: none (prom-client is not even loaded).
   */
  metrics?: WorkerMetricsOptions;
  /**
   * Calls and streams this instance runs at once (a positive integer, or Infinity). More are
   * answered `503` (protocol/nats.md §5), so the gateway tries another instance at once and,
   * when every instance is full, tells the client `Service temporarily unavailable` (can_retry).
   * Permission checks and config pulls are not counted. Default 1000.
   */
  maxConcurrent?: number;
  /** A pino logger. Default: silent. */
  logger?: Logger;
}

/** How long leaving NATS (unsubscribing) may take: while NATS is down it cannot be confirmed. */
const LEAVE_TIMEOUT_MS = 2_000;

/** The defaults of `serve` options. */
export const SERVE_DEFAULTS = {
  maxConcurrent: 1_000,
  drainTimeoutMs: 10_000,
  creditTimeoutMs: 30_000,
  pushTimeoutMs: 1_000,
  reconnectLogIntervalMs: RECONNECT_LOG_INTERVAL_MS,
  /** The waits before pushing again after a reconnect while no gateway has acknowledged. */
  reconnectPushRetryMs: [250, 500, 1_000, 2_000, 4_000],
} as const;

/**
 * A service being served over NATS. `broadcast(topic, event, payload)` and `disconnect(socketId)`
 * push to the gateways' clients over the worker's connection, in or outside requests
 * (protocol/nats.md §9); handlers have the same as `ctx.broadcast` / `ctx.disconnect`.
 */
export interface RunningService extends Broadcaster {
  /** The NATS micro service instance id (what `$SRV.PING` reports and gateways target). */
  readonly id: string;
  /** The service being served. */
  readonly definition: ServiceDefinition;
  /** Acknowledgements of the start-up push, one per gateway that answered. */
  readonly startupAcks: readonly PushAck[];
  /** Pushes the config to every gateway again; `force` replaces even an equal config version. */
  push(force?: boolean): Promise<PushAck[]>;
  /** Requests being handled right now. */
  readonly inflight: number;
  /** Where the service is in its life (README "Worker lifecycle"). */
  readonly state: WorkerState;
  /**
   * Settles when the service stops serving: resolves after a `drain()`/`stop()` you asked for,
   * rejects with WorkerClosedError when it ended any other way (its NATS connection closed for
   * good, the Services API stopped it). Await it so such an end fails your process.
   */
  readonly closed: Promise<void>;
  /** Calls `listener` on every state change; returns the function that removes it. */
  onStateChange(listener: WorkerStateListener): () => void;
  /** The service's Prometheus metrics, or null without the `metrics` option. */
  readonly metrics: WorkerMetrics | null;
  /**
   * Graceful stop: new calls are refused at once with `503` (gateways use another instance, or
   * tell clients `Service temporarily unavailable`, `can_retry`); in-flight calls and streams get
   * up to `drainTimeoutMs` to finish (then calls are aborted and streams end with an error); then
   * the service leaves discovery and NATS. Resolves when done (and `closed` resolves). The
   * connection stays open: close it (`nc.drain()`) after, or use `runWorker`, which does.
   */
  drain(): Promise<void>;
  /** The same as `drain()`. */
  stop(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const json = (value: unknown): Uint8Array =>
  encoder.encode(JSON.stringify(value === undefined ? null : value));

function endpointName(fn: ResolvedFunction): string {
  const base = fn.version === null ? fn.requestType : `${fn.requestType}-v${fn.version}`;
  return base.replace(/[^-\w]/g, '_');
}

/** Headers for ServiceMsg.respond, typed for the services package's own nats-core copy. */
function replyHeaders(entries: Record<string, string>): Parameters<ServiceMsg['respond']>[1] {
  const h = natsHeaders();
  for (const [name, value] of Object.entries(entries)) h.set(name, value);
  return { headers: h as unknown as NonNullable<Parameters<ServiceMsg['respond']>[1]>['headers'] };
}

function readMeta(
  h: HeaderValues,
  definition: ServiceDefinition,
  fn: ResolvedFunction,
): RequestMeta {
  const timeout = Number(h.get(H.timeout));
  const deadline = Number(h.get(H.deadline));
  let roles: string[] = [];
  const rolesHeader = h.get(H.roles);
  if (rolesHeader) {
    try {
      const parsed: unknown = JSON.parse(rolesHeader);
      if (Array.isArray(parsed))
        roles = parsed.filter((role): role is string => typeof role === 'string');
    } catch {
      roles = [];
    }
  }
  const fallback = typeof fn.config.timeout === 'number' ? fn.config.timeout : 25_000;
  return {
    requestId: h.get(H.requestId) || '',
    service: definition.name,
    requestType: fn.requestType,
    version: fn.version,
    userId: h.get(H.userId) || null,
    deviceId: h.get(H.deviceId) || null,
    roles,
    responseType: fn.config.response_type ?? 'sync',
    // Relative first: a worker whose clock is off still gets the time the gateway gives it.
    deadline:
      Date.now() +
      (timeout > 0 ? timeout : deadline > 0 ? Math.max(0, deadline - Date.now()) : fallback),
    gateway: h.get(H.gateway) || null,
  };
}

/** The fields of @nats-io/services' per-endpoint statistics (`$SRV.STATS`) the SDK keeps true. */
interface EndpointStats {
  num_requests: number;
  processing_time: number;
  average_processing_time: number;
  num_errors: number;
  last_error?: string;
}

/**
 * @nats-io/services times an endpoint only while its handler runs synchronously and counts an
 * error only when the handler throws, but SDK handlers answer later. This finds the endpoint's
 * statistics (library internals, checked at run time; null if their shape changes) so each reply
 * is accounted when it is sent: processing time, and errors for error replies.
 */
function endpointStats(service: Service, name: string): EndpointStats | null {
  const handlers = (service as unknown as { handlers?: unknown }).handlers;
  if (!Array.isArray(handlers)) return null;
  const stats = (handlers as { name?: unknown; stats?: unknown }[]).find((h) => h.name === name)
    ?.stats as Partial<EndpointStats> | undefined;
  if (
    !stats ||
    typeof stats.num_errors !== 'number' ||
    typeof stats.processing_time !== 'number' ||
    typeof stats.num_requests !== 'number'
  )
    return null;
  return stats as EndpointStats;
}

function account(stats: EndpointStats | null, startedAt: number, error: string | null): void {
  if (!stats) return;
  // The library already counted the request (num_requests) when its handler returned.
  stats.processing_time += Math.max(0, Date.now() - startedAt) * 1_000_000;
  stats.average_processing_time =
    stats.num_requests > 0 ? Math.round(stats.processing_time / stats.num_requests) : 0;
  if (error !== null) {
    stats.num_errors++;
    stats.last_error = error;
  }
}

function parseArgs(msg: ServiceMsg): Record<string, unknown> | null {
  if (msg.data.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(decoder.decode(msg.data));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/**
 * Serves a service as a NATS micro service (visible to `nats micro ls`, `$SRV.PING/INFO/STATS`):
 * one queue-group endpoint per function (and per permission check), a config endpoint, and one
 * direct endpoint `<prefix>.inst.<service>.<id>.>` through which gateways address this very instance. The
 * config is pushed to every gateway on start.
 */
export async function serve(
  definition: ServiceDefinition,
  options: ServeOptions,
): Promise<RunningService> {
  const nc = options.nats;
  const subjects = new Subjects(options.prefix ?? DEFAULT_PREFIX);
  const pushes = natsBroadcaster(nc, new PushEncoder(subjects.prefix));
  const logger = (options.logger ?? silentLogger()).child({ service: definition.name });
  const creditTimeoutMs = options.creditTimeoutMs ?? SERVE_DEFAULTS.creditTimeoutMs;
  const maxConcurrent = options.maxConcurrent ?? SERVE_DEFAULTS.maxConcurrent;
  if (!(maxConcurrent === Infinity || (Number.isInteger(maxConcurrent) && maxConcurrent > 0))) {
    throw new InvalidArgumentError(
      `maxConcurrent must be a positive integer or Infinity, got ${String(maxConcurrent)}`,
    );
  }
  const streams = new Map<
    string,
    { stream: CreditStream; controller: AbortController; cancelled: boolean }
  >();
  const calls = new Set<CallSignal>();
  let inflight = 0;
  let draining = false;
  let drained: (() => void) | null = null;

  // Lifecycle: state, `closed`, and the connection watch (from the start, so no loss is missed).
  const lifecycle = new Lifecycle(logger);
  if (options.onStateChange) lifecycle.listen(options.onStateChange);
  let observer: ServeObserver | null = null;
  lifecycle.listen((change) => {
    observer?.state(change.state);
    if (change.state === 'stopped') unwatch();
  });
  let connected = true;
  /** Set once the service is up: what an unexpected end (connection closed, service stopped) does. */
  let onEnd: ((error: WorkerClosedError) => void) | null = null;
  let endedEarly: WorkerClosedError | null = null;
  const ended = (error: WorkerClosedError): void => {
    if (onEnd) onEnd(error);
    else endedEarly ??= error;
  };
  /** Set once the service is up: pushes the config again after a reconnect. */
  let onReconnect: (() => void) | null = null;
  const unwatch = watchConnection(
    nc,
    logger,
    {
      disconnected: () => {
        connected = false;
        observer?.connected(false);
        if (lifecycle.state === 'serving') lifecycle.set('reconnecting', 'NATS connection lost');
      },
      reconnected: () => {
        connected = true;
        observer?.connected(true);
        observer?.reconnected();
        if (lifecycle.state === 'reconnecting') {
          lifecycle.set('serving', 'NATS connection back');
          onReconnect?.();
        }
      },
      closed: (err) =>
        ended(
          new WorkerClosedError(
            `the NATS connection closed${err ? `: ${err.message}` : ''}`,
            err ? { cause: err } : undefined,
          ),
        ),
    },
    options.reconnectLogIntervalMs ?? SERVE_DEFAULTS.reconnectLogIntervalMs,
  );

  const auth = peerAuth(options.pushToken);
  const service: Service = await new Svcm(nc as never).add({
    name: definition.name,
    version: definition.version,
    description: definition.description,
    // No service-wide queue: endpoints opt in, so the direct endpoint is not load-balanced away.
    queue: '',
    metadata: {
      [META.protocol]: PROTOCOL_VERSION,
      [META.prefix]: subjects.prefix,
      [META.configVersion]: definition.configVersion,
      ...(auth === null
        ? {}
        : {
            [AUTH_METADATA]: auth.instanceProof(
              definition.name,
              definition.version,
              definition.configVersion,
            ),
          }),
    },
  });
  const id = service.info().id;

  let metrics: WorkerMetrics | null = null;
  if (options.metrics) {
    try {
      // Loaded only now: a worker without metrics never loads prom-client.
      const { startMetrics } = await import('./metrics.js');
      ({ observer, metrics } = await startMetrics(
        { name: definition.name, version: definition.version, id },
        options.metrics,
      ));
    } catch (err) {
      await service.stop();
      throw err;
    }
    observer.state(lifecycle.state);
    observer.connected(connected);
  }

  const pushConfig = (): PushConfigMessage => ({
    service: definition.name,
    config_version: definition.configVersion,
    fun_configs: [...definition.functions.values()].map((fn) => fn.config),
    instance_id: id,
    service_version: definition.version,
  });

  const settle = () => {
    inflight--;
    if (draining && inflight === 0) drained?.();
  };

  /** An error reply, accounted on the endpoint's statistics. */
  const fail = (
    msg: ServiceMsg,
    stats: EndpointStats | null,
    startedAt: number,
    code: number,
    message: string,
  ): void => {
    guarded(() => msg.respondError(code, message));
    account(stats, startedAt, message);
  };

  /** Refuses a call or stream start with 503 when draining or full: the gateway goes elsewhere. */
  const refused = (msg: ServiceMsg, stats: EndpointStats | null, startedAt: number): boolean => {
    let reason: string;
    if (draining) reason = 'service is draining';
    else if (inflight >= maxConcurrent)
      reason = `overloaded: ${inflight} requests in flight (maxConcurrent ${maxConcurrent})`;
    else return false;
    fail(msg, stats, startedAt, ERROR_CODES.unavailable, reason);
    return true;
  };

  const handleCall = (fn: ResolvedFunction, msg: ServiceMsg, stats: EndpointStats | null): void => {
    const startedAt = Date.now();
    if (refused(msg, stats, startedAt)) {
      observer?.refused(fn.requestType, 'refused');
      return;
    }
    const args = parseArgs(msg);
    if (args === null) {
      fail(msg, stats, startedAt, ERROR_CODES.badRequest, 'arguments must be a JSON object');
      observer?.refused(fn.requestType, 'client_error');
      return;
    }
    const headers = readHeaders(msg);
    let meta = readMeta(headers, definition, fn);
    const span = startWorkerSpan(headers, meta);
    if (span !== null) meta = { ...meta, trace: span.trace };
    if (fn.config.response_type === 'stream') {
      handleStream(fn, args, meta, headers, msg, stats, startedAt, span);
      return;
    }
    inflight++;
    observer?.started(fn.requestType, false);
    let outcome: CallOutcome = 'error';
    const call = new CallSignal(meta.deadline);
    calls.add(call);
    // No closure for untraced calls: this is the worker's hot path.
    (span === null
      ? runCall(fn, args, meta, call, pushes, logger)
      : span.run(() => runCall(fn, args, meta, call, pushes, logger))
    )
      .then((result) => {
        calls.delete(call);
        outcome = result.ok ? 'ok' : outcomeOf(result.code);
        const opts = span === null ? undefined : replyHeaders(span.replyHeaders());
        guarded(() =>
          result.ok
            ? msg.respond(json(result.result), opts)
            : msg.respondError(result.code, result.error, undefined, opts),
        );
        span?.end(result.ok ? null : result.error);
        account(stats, startedAt, result.ok ? null : result.error);
      })
      // runCall turns every handler failure into a result: this is a defect in replying or
      // accounting. The gateway times the call out; the slot is freed below either way.
      .catch((err: unknown) => {
        span?.end('call not answered');
        logger.error(
          { err, function: fn.requestType, ...traceLogFields(meta.trace) },
          'call not answered',
        );
      })
      .finally(() => {
        calls.delete(call);
        observer?.finished(fn.requestType, false, outcome, (Date.now() - startedAt) / 1000);
        settle();
      });
  };

  /** Replies can fail when the connection closed under us; the worker must not crash for it. */
  const guarded = (send: () => unknown): boolean => {
    try {
      send();
      return true;
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'reply not sent');
      return false;
    }
  };

  /** A stream is accounted as one request lasting until it ends; an error if it failed. */
  const handleStream = (
    fn: ResolvedFunction,
    args: Record<string, unknown>,
    meta: RequestMeta,
    headers: HeaderValues,
    msg: ServiceMsg,
    stats: EndpointStats | null,
    startedAt: number,
    span: WorkerSpan | null,
  ): void => {
    const dataSubject = headers.get(H.streamSubject);
    const streamId = headers.get(H.streamId);
    if (!dataSubject || !streamId) {
      fail(
        msg,
        stats,
        startedAt,
        ERROR_CODES.badRequest,
        'stream requests need Genapi-Stream-Subject and Genapi-Stream-Id',
      );
      observer?.refused(fn.requestType, 'client_error');
      span?.end('bad stream request');
      return;
    }
    let streamError: string | null = null;
    let streamCode = 500;
    const credit = Number(headers.get(H.streamCredit)) || DEFAULT_STREAM_CREDIT;
    let seq = 0;
    let run: ReturnType<typeof runStream> | null = null;
    // A stream whose transport failed (connection closed) stops its handler.
    const lost = () => {
      run?.stream.cancel('connection lost');
      run?.controller.abort(new CancelledError('connection lost'));
    };
    const io: StreamIO = {
      start(result) {
        if (
          !guarded(() =>
            msg.respond(
              json(result),
              replyHeaders({
                [H.streamControl]: subjects.streamControl(definition.name, id, streamId),
                ...span?.replyHeaders(),
              }),
            ),
          )
        )
          lost();
      },
      startError(message, code) {
        streamError = message;
        streamCode = code;
        guarded(() =>
          msg.respondError(
            code,
            message,
            undefined,
            span === null ? undefined : replyHeaders(span.replyHeaders()),
          ),
        );
      },
      emit(event: StreamEvent, data) {
        const h = new OutboundHeaders();
        h.append(H.streamEvent, event);
        h.append(H.streamSeq, String(++seq));
        if (event === 'error') {
          streamError = String(data);
          // A failure message may hold line breaks; a header value cannot.
          h.append(H.serviceError, streamError.replace(/[\r\n]+/g, ' '));
        }
        if (
          !guarded(() =>
            nc.publish(
              dataSubject,
              event === 'chunk' || event === 'last' ? json(data) : new Uint8Array(0),
              { headers: h },
            ),
          )
        )
          lost();
      },
    };
    inflight++;
    observer?.started(fn.requestType, true);
    const starting = () => runStream(fn, args, meta, io, credit, creditTimeoutMs, pushes, logger);
    const started = span === null ? starting() : span.run(starting);
    run = started;
    const entry = { stream: started.stream, controller: started.controller, cancelled: false };
    streams.set(streamId, entry);
    started.done
      .catch((err: unknown) =>
        logger.error({ err, streamId, ...traceLogFields(meta.trace) }, 'stream handler failed'),
      )
      .finally(() => {
        span?.end(streamError);
        streams.delete(streamId);
        account(stats, startedAt, streamError);
        const outcome: CallOutcome = entry.cancelled
          ? 'cancelled'
          : streamError === null
            ? 'ok'
            : outcomeOf(streamCode);
        observer?.finished(fn.requestType, true, outcome, (Date.now() - startedAt) / 1000);
        settle();
      });
  };

  const handleAuthorize = (
    fn: ResolvedFunction,
    msg: ServiceMsg,
    stats: EndpointStats | null,
  ): void => {
    const startedAt = Date.now();
    const args = parseArgs(msg);
    if (args === null) {
      guarded(() => msg.respond(json(false)));
      account(stats, startedAt, null);
      observer?.permission(fn.requestType, false);
      return;
    }
    runAuthorize(fn, args, readMeta(readHeaders(msg), definition, fn), pushes, logger)
      .then((allowed) => {
        guarded(() => msg.respond(json(allowed)));
        account(stats, startedAt, null);
        observer?.permission(fn.requestType, allowed);
      })
      // runAuthorize denies on any throw, so this is a defect of ours: deny, as a throw would.
      .catch((err: unknown) => {
        logger.error({ err, function: fn.requestType }, 'permission check failed');
        guarded(() => msg.respond(json(false)));
      });
  };

  // Queue-group endpoints: functions, permission checks, config. Requests to this very instance
  // arrive on the `direct` endpoint and are accounted there.
  let directStats: EndpointStats | null = null;
  const direct = new Map<string, (msg: ServiceMsg) => void>();
  for (const fn of definition.functions.values()) {
    const metadata: Record<string, string> = {
      request_type: fn.requestType,
      response_type: fn.config.response_type ?? 'sync',
    };
    if (fn.version !== null) metadata.version = fn.version;
    const name = endpointName(fn);
    service.addEndpoint(name, {
      subject: subjects.fn(definition.name, fn.requestType, fn.version),
      queue: QUEUE_GROUP,
      metadata,
      handler: (_err, msg) => handleCall(fn, msg, fnStats),
    });
    const fnStats = endpointStats(service, name);
    direct.set(subjects.instanceFn(definition.name, id, fn.requestType, fn.version), (msg) =>
      handleCall(fn, msg, directStats),
    );
    if (fn.definition.authorize) {
      service.addEndpoint(`${name}-permission`, {
        subject: subjects.perm(definition.name, fn.requestType, fn.version),
        queue: QUEUE_GROUP,
        metadata: { ...metadata, kind: 'permission' },
        handler: (_err, msg) => handleAuthorize(fn, msg, permStats),
      });
      const permStats = endpointStats(service, `${name}-permission`);
      direct.set(subjects.instancePerm(definition.name, id, fn.requestType, fn.version), (msg) =>
        handleAuthorize(fn, msg, directStats),
      );
    }
  }
  const answerConfig = (msg: ServiceMsg) => {
    const body = json(pushConfig());
    const nonce = msg.headers?.get(NONCE_HEADER) ?? '';
    if (auth === null || nonce === '') {
      guarded(() => msg.respond(body));
      return;
    }
    const signed = replyHeaders({ [AUTH_HEADER]: auth.signConfig(msg.subject, nonce, body) });
    guarded(() => msg.respond(body, signed));
  };
  service.addEndpoint('config', {
    subject: subjects.configGet(definition.name),
    queue: QUEUE_GROUP,
    handler: (_err, msg) => answerConfig(msg),
  });
  direct.set(subjects.instanceConfig(definition.name, id), answerConfig);
  service.addEndpoint('direct', {
    subject: subjects.instanceWildcard(definition.name, id),
    handler: (_err, msg) => {
      const handler = direct.get(msg.subject);
      if (handler) handler(msg);
      else
        fail(
          msg,
          directStats,
          Date.now(),
          ERROR_CODES.notFound,
          `no such function on this instance: ${msg.subject}`,
        );
    },
  });
  directStats = endpointStats(service, 'direct');

  // Stream control: credit and cancel from the gateway.
  const control: Subscription = nc.subscribe(subjects.streamControlWildcard(definition.name, id), {
    callback: (err, msg) => {
      if (err) return;
      const streamId = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
      const run = streams.get(streamId);
      if (!run) return;
      const kind = readHeaders(msg).get(H.control);
      if (kind === 'credit') run.stream.grant(Number(msg.string()));
      else if (kind === 'cancel') {
        run.cancelled = true;
        run.stream.cancel('cancelled by the gateway');
        run.controller.abort(new CancelledError('stream cancelled'));
      }
    },
  });

  const push = async (force = false): Promise<PushAck[]> => {
    const h = natsHeaders();
    if (force) h.set(H.force, 'true');
    const acks: PushAck[] = [];
    const subject = subjects.configPush(definition.name);
    const body = json(pushConfig());
    if (auth !== null) h.set(AUTH_HEADER, auth.signPush(subject, body));
    try {
      const replies = await nc.requestMany(subject, body, {
        strategy: 'timer',
        maxWait: options.pushTimeoutMs ?? SERVE_DEFAULTS.pushTimeoutMs,
        headers: h,
      });
      for await (const reply of replies) {
        try {
          acks.push(JSON.parse(reply.string()) as PushAck);
        } catch {
          logger.warn('unreadable push acknowledgement');
        }
      }
    } catch (err) {
      // No gateway listening yet: they will pull the config when they discover this instance.
      logger.debug({ err: (err as Error).message }, 'config push not acknowledged');
    }
    for (const ack of acks) {
      if (ack.status === 'error')
        logger.error({ gateway: ack.gateway, ack }, 'config push refused');
      else if (ack.status === 'accepted' && ack.rejected.length > 0)
        logger.warn(
          { gateway: ack.gateway, rejected: ack.rejected },
          'config push partly rejected',
        );
    }
    return acks;
  };

  const startupAcks = options.pushOnStart === false ? [] : await push();

  /** Every call and stream still running is stopped: aborted, streams ended with an error. */
  const abortAll = (reason: string): void => {
    for (const call of calls) call.cancel(new CancelledError(reason));
    for (const run of streams.values()) {
      run.cancelled = true;
      try {
        // Tells the gateway (and so the client) the stream ended, instead of leaving it to time out.
        run.stream.fail(reason, ERROR_CODES.unavailable);
      } catch {
        // The connection is gone: nobody is left to tell.
      }
      run.controller.abort(new CancelledError(reason));
    }
  };

  /** Leaves discovery and every subject (bounded: while NATS is down the unsubscribes cannot be confirmed). */
  const leave = async (): Promise<void> => {
    control.unsubscribe();
    await withDeadline(
      service.stop().catch(() => undefined),
      LEAVE_TIMEOUT_MS,
      () => undefined,
    );
    await observer?.close();
  };

  let drainRequested = false;
  let endedBy: WorkerClosedError | null = null;
  onEnd = (error) => {
    if (drainRequested || endedBy !== null) return;
    endedBy = error;
    draining = true;
    logger.error({ err: error, id, inflight }, 'service ended without a drain');
    abortAll('connection lost');
    // leave() never rejects (each step is caught); the end is told either way.
    leave().then(
      () => lifecycle.end(error.message, error),
      () => lifecycle.end(error.message, error),
    );
  };
  // The Services API stops a service by itself when one of its subscriptions ends (e.g. a
  // permission violation): that is an end nobody asked for either.
  service.stopped.then(
    (err) => {
      // A connection that closed ends every subscription first: the connection watch says so.
      if (!drainRequested && !nc.isClosed())
        ended(
          new WorkerClosedError(
            `the NATS Services API stopped the service${err ? `: ${err.message}` : ''}`,
            err ? { cause: err } : undefined,
          ),
        );
    },
    () => undefined,
  );
  if (endedEarly !== null) {
    const error: WorkerClosedError = endedEarly;
    onEnd(error);
    throw error;
  }
  /** Ends the retries of the latest push after a reconnect (a newer reconnect or the end). */
  let reconnectPush: AbortController | null = null;
  lifecycle.listen((change) => {
    if (change.state === 'draining' || change.state === 'stopped') reconnectPush?.abort();
  });
  onReconnect = () => {
    if (options.pushOnReconnect === false) return;
    reconnectPush?.abort();
    const retries = new AbortController();
    reconnectPush = retries;
    // Gateways may have dropped this instance (or restarted) meanwhile: they need the config. They
    // reconnect at their own pace, so a push nobody acknowledged is tried again, a few times.
    const pushUntilAcknowledged = async (): Promise<number> => {
      for (const waitMs of [0, ...SERVE_DEFAULTS.reconnectPushRetryMs]) {
        if (waitMs > 0) await sleep(waitMs, retries.signal);
        if (retries.signal.aborted) return 0;
        const acks = await push();
        if (acks.length > 0) return acks.length;
      }
      return 0;
    };
    pushUntilAcknowledged().then(
      (gateways) => {
        if (!retries.signal.aborted)
          logger.info({ gateways }, 'config pushed again after reconnect');
      },
      (err: unknown) => logger.warn({ err }, 'config push after reconnect failed'),
    );
  };
  lifecycle.set(connected ? 'serving' : 'reconnecting', 'started');
  logger.info(
    {
      id,
      version: definition.version,
      functions: definition.functions.size,
      gateways: startupAcks.length,
      ...(metrics?.url ? { metrics: metrics.url } : {}),
    },
    'service started',
  );

  const drainTimeoutMs = options.drainTimeoutMs ?? SERVE_DEFAULTS.drainTimeoutMs;
  const runDrain = async (): Promise<void> => {
    if (endedBy !== null) {
      // It already ended (and says so through `closed`): nothing is left to drain.
      await lifecycle.closed.catch(() => undefined);
      return;
    }
    drainRequested = true;
    draining = true;
    lifecycle.set('draining', 'drain requested');
    logger.info(
      { id, inflight, drainTimeoutMs },
      'draining: refusing new calls, finishing in-flight ones',
    );
    if (inflight > 0) {
      await withDeadline(
        new Promise<void>((resolve) => (drained = resolve)),
        drainTimeoutMs,
        () => undefined,
      );
    }
    if (inflight > 0) {
      logger.warn({ id, inflight }, 'drain deadline passed: aborting the calls and streams left');
      abortAll('service stopping');
    }
    await leave();
    logger.info({ id }, 'service stopped');
    lifecycle.end('drained', null);
  };
  let drainPromise: Promise<void> | null = null;
  const drain = (): Promise<void> => (drainPromise ??= runDrain());

  return {
    id,
    definition,
    startupAcks,
    push,
    broadcast: (topic, event, payload) => pushes.broadcast(topic, event, payload),
    disconnect: (socketId) => pushes.disconnect(socketId),
    get inflight() {
      return inflight;
    },
    get state() {
      return lifecycle.state;
    },
    closed: lifecycle.closed,
    onStateChange: (listener) => lifecycle.listen(listener),
    metrics,
    drain,
    stop: drain,
  };
}
