import { InvalidArgumentError } from '../../errors.js';
import { silentLogger } from '../../log/logger.js';
import { META, PROTOCOL_VERSION } from '../../nats/headers.js';
import { AUTH_METADATA, MIN_PUSH_TOKEN_LENGTH, PeerAuth } from '../../nats/peer-auth.js';
import type { PushAck } from '../../nats/messages.js';
import { DEFAULT_PREFIX, Subjects } from '../../nats/subjects.js';
import { withDeadline } from '../../util/deadline.js';
import type { ServiceDefinition } from '../define.js';
import { Lifecycle, watchConnection, WorkerClosedError } from '../lifecycle.js';
import type { WorkerMetrics } from '../observer.js';
import { natsBroadcaster, PushEncoder } from '../pushes.js';
import { ConfigPublisher } from './config-push.js';
import { addEndpoints } from './endpoints.js';
import { InFlight } from './inflight.js';
import { MicroService } from './micro-service.js';
import {
  LEAVE_TIMEOUT_MS,
  SERVE_DEFAULTS,
  type RunningService,
  type ServeOptions,
} from './options.js';
import { RequestHandler } from './requests.js';
import { ServeScope } from './scope.js';
import { StreamServer } from './streams.js';

/** The signer for `pushToken`, or null without one; a short token is refused. */
function peerAuth(token: string | null | undefined): PeerAuth | null {
  if (token === null || token === undefined) return null;
  if (token.length < MIN_PUSH_TOKEN_LENGTH)
    throw new InvalidArgumentError(
      `pushToken must be at least ${MIN_PUSH_TOKEN_LENGTH} characters (it is an HMAC key)`,
    );
  return new PeerAuth(token);
}

/**
 * One served service and its life (lifecycle.ts): `starting` while `start` registers it and
 * pushes its config; `serving` (or `reconnecting` while NATS is down); `draining` once `drain()`
 * was called; `stopped` after the drain, or at once when it ended any other way (connection
 * closed for good, the Services API stopped it).
 */
export class WorkerServer {
  private readonly lifecycle: Lifecycle;
  private readonly inflight: InFlight;
  private readonly streams: StreamServer;
  private readonly requests: RequestHandler;
  private readonly config: ConfigPublisher;
  private readonly unwatch: () => void;
  private readonly drainTimeoutMs: number;
  private service: MicroService | null = null;
  private metrics: WorkerMetrics | null = null;
  private connected = true;
  /** An end that came while starting: `start` fails with it. */
  private endedEarly: WorkerClosedError | null = null;
  /** The unexpected end, once it came. */
  private endedBy: WorkerClosedError | null = null;
  private drainRequested = false;
  private drainPromise: Promise<void> | null = null;

  private constructor(
    private readonly scope: ServeScope,
    private readonly options: ServeOptions,
    auth: PeerAuth | null,
    maxConcurrent: number,
  ) {
    this.drainTimeoutMs = options.drainTimeoutMs ?? SERVE_DEFAULTS.drainTimeoutMs;
    this.inflight = new InFlight(maxConcurrent);
    this.streams = new StreamServer(
      scope,
      this.inflight,
      options.creditTimeoutMs ?? SERVE_DEFAULTS.creditTimeoutMs,
    );
    this.requests = new RequestHandler(scope, this.inflight, this.streams);
    this.config = new ConfigPublisher(
      scope,
      auth,
      options.pushTimeoutMs ?? SERVE_DEFAULTS.pushTimeoutMs,
      SERVE_DEFAULTS.reconnectPushRetryMs,
    );
    // Lifecycle: state, `closed`, and the connection watch (from the start, so no loss is missed).
    const lifecycle = new Lifecycle(scope.logger);
    this.lifecycle = lifecycle;
    if (options.onStateChange) lifecycle.listen(options.onStateChange);
    lifecycle.listen((change) => {
      scope.observer?.state(change.state);
      if (change.state === 'stopped') this.unwatch();
      if (change.state === 'draining' || change.state === 'stopped') this.config.stopRetries();
    });
    this.unwatch = watchConnection(
      scope.nc,
      scope.logger,
      {
        disconnected: () => this.disconnected(),
        reconnected: () => this.reconnected(),
        closed: (err) =>
          this.ended(
            new WorkerClosedError(
              `the NATS connection closed${err ? `: ${err.message}` : ''}`,
              err ? { cause: err } : undefined,
            ),
          ),
      },
      options.reconnectLogIntervalMs ?? SERVE_DEFAULTS.reconnectLogIntervalMs,
    );
  }

  /** Registers `definition`, pushes its config and serves it: what `serve()` does. */
  static async start(
    definition: ServiceDefinition,
    options: ServeOptions,
  ): Promise<RunningService> {
    const nc = options.nats;
    const subjects = new Subjects(options.prefix ?? DEFAULT_PREFIX);
    const logger = (options.logger ?? silentLogger()).child({ service: definition.name });
    const scope = new ServeScope(
      nc,
      definition,
      subjects,
      natsBroadcaster(nc, new PushEncoder(subjects.prefix)),
      logger,
    );
    const maxConcurrent = options.maxConcurrent ?? SERVE_DEFAULTS.maxConcurrent;
    if (!(maxConcurrent === Infinity || (Number.isInteger(maxConcurrent) && maxConcurrent > 0))) {
      throw new InvalidArgumentError(
        `maxConcurrent must be a positive integer or Infinity, got ${String(maxConcurrent)}`,
      );
    }
    const auth = peerAuth(options.pushToken);
    const server = new WorkerServer(scope, options, auth, maxConcurrent);
    return server.run(auth);
  }

  /** `starting` → `serving`: registers, subscribes, pushes; then watches for an unexpected end. */
  private async run(auth: PeerAuth | null): Promise<RunningService> {
    const { scope, options, lifecycle } = this;
    const { nc, definition, subjects, logger } = scope;
    const service = new MicroService(nc, {
      name: definition.name,
      version: definition.version,
      description: definition.description,
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
    this.service = service;
    const id = service.id;
    scope.id = id;

    if (options.metrics) {
      try {
        // Loaded only now: a worker without metrics never loads prom-client.
        const { startMetrics } = await import('../metrics.js');
        const started = await startMetrics(
          { name: definition.name, version: definition.version, id },
          options.metrics,
        );
        scope.observer = started.observer;
        this.metrics = started.metrics;
      } catch (err) {
        await service.stop();
        throw err;
      }
      scope.observer.state(lifecycle.state);
      scope.observer.connected(this.connected);
    }

    addEndpoints(service, this.scope, this.requests, this.config);
    this.streams.listen();
    const startupAcks = options.pushOnStart === false ? [] : await this.config.push();

    // The micro service stops by itself when one of its subscriptions ends (e.g. a
    // permission violation): that is an end nobody asked for either.
    service.stopped.then(
      (err) => {
        // A connection that closed ends every subscription first: the connection watch says so.
        if (!this.drainRequested && !nc.isClosed())
          this.ended(
            new WorkerClosedError(
              `the NATS Services API stopped the service${err ? `: ${err.message}` : ''}`,
              err ? { cause: err } : undefined,
            ),
          );
      },
      () => undefined,
    );
    if (this.endedEarly !== null) {
      const error: WorkerClosedError = this.endedEarly;
      this.end(error);
      throw error;
    }
    lifecycle.set(this.connected ? 'serving' : 'reconnecting', 'started');
    logger.info(
      {
        id,
        version: definition.version,
        functions: definition.functions.size,
        gateways: startupAcks.length,
        ...(this.metrics?.url ? { metrics: this.metrics.url } : {}),
      },
      'service started',
    );
    return this.running(startupAcks);
  }

  /** The NATS connection dropped: `serving` → `reconnecting`. */
  private disconnected(): void {
    this.connected = false;
    this.scope.observer?.connected(false);
    if (this.lifecycle.state === 'serving')
      this.lifecycle.set('reconnecting', 'NATS connection lost');
  }

  /** The NATS connection is back: `reconnecting` → `serving`, and the config is pushed again. */
  private reconnected(): void {
    const { observer } = this.scope;
    this.connected = true;
    observer?.connected(true);
    observer?.reconnected();
    if (this.lifecycle.state === 'reconnecting') {
      this.lifecycle.set('serving', 'NATS connection back');
      if (this.options.pushOnReconnect !== false) this.config.pushAfterReconnect();
    }
  }

  /** An end nobody asked for; while still starting, `start` fails with it. */
  private ended(error: WorkerClosedError): void {
    if (this.lifecycle.state === 'starting') this.endedEarly ??= error;
    else this.end(error);
  }

  /** Every call and stream still running is stopped: aborted, streams ended with an error. */
  private abortAll(reason: string): void {
    this.inflight.abortCalls(reason);
    this.streams.abortAll(reason);
  }

  /** Leaves discovery and every subject (bounded: while NATS is down the unsubscribes cannot be confirmed). */
  private async leave(): Promise<void> {
    this.streams.close();
    const service = this.service;
    if (service !== null)
      await withDeadline(
        service.stop().catch(() => undefined),
        LEAVE_TIMEOUT_MS,
        () => undefined,
      );
    await this.scope.observer?.close();
  }

  /** The unexpected end: running work is aborted, the service leaves, `closed` rejects. */
  private end(error: WorkerClosedError): void {
    if (this.drainRequested || this.endedBy !== null) return;
    this.endedBy = error;
    this.inflight.refuseNew();
    this.scope.logger.error(
      { err: error, id: this.scope.id, inflight: this.inflight.size },
      'service ended without a drain',
    );
    this.abortAll('connection lost');
    // leave() never rejects (each step is caught); the end is told either way.
    this.leave().then(
      () => this.lifecycle.end(error.message, error),
      () => this.lifecycle.end(error.message, error),
    );
  }

  /** `drain()`/`stop()`: at most once; later calls share the first. */
  private drain(): Promise<void> {
    return (this.drainPromise ??= this.runDrain());
  }

  /** `draining` → `stopped`: refuse new work, let running work finish (bounded), leave. */
  private async runDrain(): Promise<void> {
    const { lifecycle, inflight, drainTimeoutMs } = this;
    const { logger, id } = this.scope;
    if (this.endedBy !== null) {
      // It already ended (and says so through `closed`): nothing is left to drain.
      await lifecycle.closed.catch(() => undefined);
      return;
    }
    this.drainRequested = true;
    inflight.refuseNew();
    lifecycle.set('draining', 'drain requested');
    logger.info(
      { id, inflight: inflight.size, drainTimeoutMs },
      'draining: refusing new calls, finishing in-flight ones',
    );
    await inflight.settled(drainTimeoutMs);
    if (inflight.size > 0) {
      logger.warn(
        { id, inflight: inflight.size },
        'drain deadline passed: aborting the calls and streams left',
      );
      this.abortAll('service stopping');
    }
    await this.leave();
    logger.info({ id }, 'service stopped');
    lifecycle.end('drained', null);
  }

  /** The handle `serve()` returns. */
  private running(startupAcks: readonly PushAck[]): RunningService {
    const { scope, lifecycle, inflight, config } = this;
    const drain = () => this.drain();
    return {
      id: scope.id,
      definition: scope.definition,
      startupAcks,
      push: (force) => config.push(force),
      broadcast: (topic, event, payload) => scope.pushes.broadcast(topic, event, payload),
      disconnect: (socketId) => scope.pushes.disconnect(socketId),
      get inflight() {
        return inflight.size;
      },
      get state() {
        return lifecycle.state;
      },
      closed: lifecycle.closed,
      onStateChange: (listener) => lifecycle.listen(listener),
      metrics: this.metrics,
      drain,
      stop: drain,
    };
  }
}
