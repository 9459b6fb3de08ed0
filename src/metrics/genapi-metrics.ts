/**
 * The gen_api family of the gateway's metrics: requests in flight, function configs, the NATS link,
 * discovery, circuit breakers and rate limits, read when scraped. Per-request counters and
 * durations are GenApiRequestMetrics (genapi-requests.ts), fed by telemetry.
 */
import { Gauge, type Registry } from 'prom-client';
import type { GenApi } from '../genapi/gen-api.js';
import { readCounter, readGauge } from './read-at-scrape.js';

const BREAKER_STATES = ['closed', 'open', 'half_open', 'isolated', 'stalled'] as const;
const NATS_STATES = ['connected', 'reconnecting', 'disconnected', 'closed'] as const;

/** Registers the gen_api, NATS, discovery, breaker and rate-limit metrics of `genApi`. */
export function registerGenApiMetrics(
  registry: Registry,
  p: string,
  genApi: GenApi,
  natsRttTimeoutMs: number,
): void {
  const executor = genApi.executor.stats;
  readGauge(
    registry,
    { name: `${p}genapi_inflight`, help: 'gen_api requests running now.' },
    (set) => set({}, executor.inflight),
  );
  readGauge(
    registry,
    { name: `${p}genapi_streams`, help: 'gen_api streams being relayed now.' },
    (set) => set({}, executor.streams),
  );
  readGauge(
    registry,
    {
      name: `${p}genapi_functions`,
      help: 'Function configs known (in-process and from workers).',
    },
    (set) => set({}, genApi.registry.count()),
  );
  readGauge(
    registry,
    {
      name: `${p}nats_connected`,
      help: 'Whether the NATS link is connected (1) or not (0: down, not connected yet, or no NATS configured).',
    },
    (set) => set({}, genApi.nats?.connected === true ? 1 : 0),
  );
  new Gauge({
    name: `${p}nats_rtt_seconds`,
    help: 'Round trip to the NATS server, seconds (NaN when not connected or no answer in time).',
    registers: [registry],
    async collect(this: Gauge) {
      const link = genApi.nats;
      if (link === null) {
        this.reset();
        return;
      }
      const ms = await link.rtt(natsRttTimeoutMs);
      this.set(ms === null ? Number.NaN : ms / 1000);
    },
  });
  readGauge(
    registry,
    {
      name: `${p}nats_status`,
      help: 'The NATS link state: 1 for the current one of connected, reconnecting, disconnected, closed.',
      labelNames: ['status'],
    },
    (set) => {
      const link = genApi.nats;
      if (link === null) return;
      const current = link.health().status;
      for (const status of NATS_STATES) set({ status }, status === current ? 1 : 0);
    },
  );
  readCounter(
    registry,
    { name: `${p}nats_reconnects_total`, help: 'NATS reconnects since start.' },
    (set) => {
      const link = genApi.nats;
      if (link !== null) set({}, link.health().reconnects);
    },
  );
  readGauge(
    registry,
    { name: `${p}nats_pending_requests`, help: 'Requests waiting for a worker reply.' },
    (set) => {
      const link = genApi.nats;
      if (link !== null) set({}, link.health().pendingRequests);
    },
  );
  readGauge(
    registry,
    {
      name: `${p}discovered_instances`,
      help: 'Live worker instances discovery knows, by service.',
      labelNames: ['service'],
    },
    (set) => {
      const link = genApi.nats;
      if (link === null) return;
      const byService = new Map<string, number>();
      for (const instance of link.discovery.all())
        byService.set(instance.service, (byService.get(instance.service) ?? 0) + 1);
      for (const [service, count] of byService) set({ service }, count);
    },
  );
  readGauge(
    registry,
    {
      name: `${p}breaker_state`,
      help: 'Circuit breakers: 1 for the current state (closed, open, half_open, isolated, stalled), by scope (service, instance) and name.',
      labelNames: ['scope', 'name', 'state'],
    },
    (set) => {
      const { services, instances } = genApi.resilience.snapshot();
      for (const [scope, states] of [
        ['service', services],
        ['instance', instances],
      ] as const) {
        for (const [name, current] of Object.entries(states))
          for (const state of BREAKER_STATES)
            set({ scope, name, state }, state === current ? 1 : 0);
      }
    },
  );
  const limits = genApi.rateLimits;
  if (limits !== null) {
    readCounter(
      registry,
      {
        name: `${p}ratelimit_checks_total`,
        help: 'Rate-limit checks by policy.',
        labelNames: ['policy'],
      },
      (set) => {
        for (const policy of limits.health().policies)
          set({ policy: policy.config.id }, policy.stats.checks);
      },
    );
    readCounter(
      registry,
      {
        name: `${p}ratelimit_decisions_total`,
        help: 'Rate-limit decisions other than allow, by policy and outcome (denied, would_deny, fail_open, fail_closed, deny_cache_hit, store_error).',
        labelNames: ['policy', 'outcome'],
      },
      (set) => {
        for (const { config, stats: s } of limits.health().policies) {
          const policy = config.id;
          set({ policy, outcome: 'denied' }, s.denied);
          set({ policy, outcome: 'would_deny' }, s.wouldDeny);
          set({ policy, outcome: 'fail_open' }, s.failOpen);
          set({ policy, outcome: 'fail_closed' }, s.failClosed);
          set({ policy, outcome: 'deny_cache_hit' }, s.denyCacheHits);
          set({ policy, outcome: 'store_error' }, s.storeErrors);
        }
      },
    );
  }
}
