/**
 * Prometheus metrics of a served service (prom-client). `serve()` loads this module with a
 * dynamic import only when its `metrics` option is given, so a worker without metrics never
 * loads prom-client.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type Metric,
} from 'prom-client';
import { InvalidStateError } from '../errors.js';
import type { WorkerState } from './lifecycle.js';
import {
  WORKER_METRICS_DEFAULTS,
  type CallOutcome,
  type ServeObserver,
  type WorkerMetrics,
  type WorkerMetricsOptions,
} from './observer.js';

/** Duration buckets (seconds): 1 ms to 30 s, as gen_api calls go. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STATES: readonly WorkerState[] = [
  'starting',
  'serving',
  'reconnecting',
  'draining',
  'stopped',
];

/** The service a set of metrics describes. */
export interface MeteredService {
  readonly name: string;
  readonly version: string;
  readonly id: string;
}

/** The registry's metric called `name`, made by `create` the first time (serves may share a registry). */
function metric<T extends Metric>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

function metricsOf(registry: Registry) {
  const registers = [registry];
  return {
    calls: metric(
      registry,
      'gen_gateway_worker_calls_total',
      () =>
        new Counter({
          name: 'gen_gateway_worker_calls_total',
          help: 'Calls and streams answered, by service, function, kind (call|stream) and outcome',
          labelNames: ['service', 'function', 'kind', 'outcome'],
          registers,
        }),
    ),
    duration: metric(
      registry,
      'gen_gateway_worker_call_duration_seconds',
      () =>
        new Histogram({
          name: 'gen_gateway_worker_call_duration_seconds',
          help: 'How long calls ran (streams: from start to end), by service, function and kind',
          labelNames: ['service', 'function', 'kind'],
          buckets: DURATION_BUCKETS,
          registers,
        }),
    ),
    inflight: metric(
      registry,
      'gen_gateway_worker_inflight',
      () =>
        new Gauge({
          name: 'gen_gateway_worker_inflight',
          help: 'Calls and streams running now (what maxConcurrent caps)',
          labelNames: ['service'],
          registers,
        }),
    ),
    streams: metric(
      registry,
      'gen_gateway_worker_streams_active',
      () =>
        new Gauge({
          name: 'gen_gateway_worker_streams_active',
          help: 'Streams running now',
          labelNames: ['service'],
          registers,
        }),
    ),
    permissions: metric(
      registry,
      'gen_gateway_worker_permission_checks_total',
      () =>
        new Counter({
          name: 'gen_gateway_worker_permission_checks_total',
          help: 'Permission checks (authorize) answered, by service, function and result',
          labelNames: ['service', 'function', 'result'],
          registers,
        }),
    ),
    connected: metric(
      registry,
      'gen_gateway_worker_nats_connected',
      () =>
        new Gauge({
          name: 'gen_gateway_worker_nats_connected',
          help: '1 while the NATS connection is up, 0 while it is down or closed',
          labelNames: ['service'],
          registers,
        }),
    ),
    reconnects: metric(
      registry,
      'gen_gateway_worker_nats_reconnects_total',
      () =>
        new Counter({
          name: 'gen_gateway_worker_nats_reconnects_total',
          help: 'Times the NATS connection came back after a loss',
          labelNames: ['service'],
          registers,
        }),
    ),
    state: metric(
      registry,
      'gen_gateway_worker_state',
      () =>
        new Gauge({
          name: 'gen_gateway_worker_state',
          help: '1 for the state the service is in (starting, serving, reconnecting, draining, stopped)',
          labelNames: ['service', 'state'],
          registers,
        }),
    ),
    info: metric(
      registry,
      'gen_gateway_worker_info',
      () =>
        new Gauge({
          name: 'gen_gateway_worker_info',
          help: 'Always 1: the service, its deployment version and instance id',
          labelNames: ['service', 'version', 'instance'],
          registers,
        }),
    ),
  };
}

/** The observer filling the metrics, with per-function counters looked up once. */
class MetricsObserver implements ServeObserver {
  private readonly byFunction = new Map<
    string,
    {
      calls: Map<string, Counter.Internal>;
      duration: { call: Histogram.Internal<string>; stream: Histogram.Internal<string> };
    }
  >();
  private readonly inflight: Gauge.Internal<string>;
  private readonly streams: Gauge.Internal<string>;

  constructor(
    private readonly m: ReturnType<typeof metricsOf>,
    private readonly service: string,
    private readonly onClose: () => Promise<void>,
  ) {
    this.inflight = m.inflight.labels({ service });
    this.streams = m.streams.labels({ service });
    this.inflight.set(0);
    this.streams.set(0);
  }

  private of(fn: string) {
    let entry = this.byFunction.get(fn);
    if (!entry) {
      const labels = { service: this.service, function: fn };
      entry = {
        calls: new Map(),
        duration: {
          call: this.m.duration.labels({ ...labels, kind: 'call' }),
          stream: this.m.duration.labels({ ...labels, kind: 'stream' }),
        },
      };
      this.byFunction.set(fn, entry);
    }
    return entry;
  }

  private count(fn: string, stream: boolean, outcome: CallOutcome): void {
    const entry = this.of(fn);
    const key = stream ? `stream:${outcome}` : outcome;
    let counter = entry.calls.get(key);
    if (!counter) {
      counter = this.m.calls.labels({
        service: this.service,
        function: fn,
        kind: stream ? 'stream' : 'call',
        outcome,
      });
      entry.calls.set(key, counter);
    }
    counter.inc();
  }

  started(_fn: string, stream: boolean): void {
    this.inflight.inc();
    if (stream) this.streams.inc();
  }

  finished(fn: string, stream: boolean, outcome: CallOutcome, seconds: number): void {
    this.inflight.dec();
    if (stream) this.streams.dec();
    this.count(fn, stream, outcome);
    const duration = this.of(fn).duration;
    (stream ? duration.stream : duration.call).observe(seconds);
  }

  refused(fn: string, outcome: CallOutcome): void {
    this.count(fn, false, outcome);
  }

  permission(fn: string, allowed: boolean): void {
    this.m.permissions.inc({
      service: this.service,
      function: fn,
      result: allowed ? 'allowed' : 'denied',
    });
  }

  state(state: WorkerState): void {
    for (const s of STATES)
      this.m.state.set({ service: this.service, state: s }, s === state ? 1 : 0);
  }

  connected(up: boolean): void {
    this.m.connected.set({ service: this.service }, up ? 1 : 0);
  }

  reconnected(): void {
    this.m.reconnects.inc({ service: this.service });
  }

  close(): Promise<void> {
    return this.onClose();
  }
}

/** Serves `registry` at `path` on `host:port`; rejects with InvalidStateError when it cannot listen. */
async function listen(registry: Registry, port: number, host: string, path: string) {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  server.listen(port, host);
  try {
    await once(server, 'listening');
  } catch (err) {
    throw new InvalidStateError(
      `cannot serve worker metrics on ${host}:${port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { server, url: `http://${shownHost}:${address.port}${path}` };
}

/**
 * Registers the service's metrics (and, when asked, starts the HTTP listener): the observer
 * `serve()` reports to and what `running.metrics` shows.
 */
export async function startMetrics(
  service: MeteredService,
  options: WorkerMetricsOptions,
): Promise<{ observer: ServeObserver; metrics: WorkerMetrics }> {
  const own = options.registry === undefined;
  const registry = options.registry ?? new Registry();
  if (options.processMetrics ?? own) collectDefaultMetrics({ register: registry });
  const m = metricsOf(registry);
  m.info.set({ service: service.name, version: service.version, instance: service.id }, 1);
  let listener: { server: Server; url: string } | null = null;
  if (options.port !== undefined) {
    listener = await listen(
      registry,
      options.port,
      options.host ?? WORKER_METRICS_DEFAULTS.host,
      options.path ?? WORKER_METRICS_DEFAULTS.path,
    );
  }
  const close = async (): Promise<void> => {
    if (!listener) return;
    const { server } = listener;
    listener = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const observer = new MetricsObserver(m, service.name, close);
  return { observer, metrics: { registry, url: listener === null ? null : listener.url } };
}
