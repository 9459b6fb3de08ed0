import type { Gateway } from '../gateway.js';
import { LocalBus, localBroadcaster } from '../bus/local.js';
import { NatsLink, type NatsGatewayOptions, type NatsHealth } from '../bus/nats/link.js';
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import { connectNats, connectNatsRetrying, natsClientOptions } from '../nats/connection.js';
import type { Assigns } from '../channel/types.js';
import type { SocketMount } from '../socket/mount.js';
import type { ServiceDefinition } from '../worker/define.js';
import { DEFAULT_ARG_LIMITS, type ArgLimits } from './args/convert.js';
import { genApiChannel, GEN_API_DEFAULTS, type GenApiChannelOptions } from './channel.js';
import { FailedConfigs } from './config/failed.js';
import { ConfigReceiver } from './config/push.js';
import { ConfigRegistry } from './config/registry.js';
import { validateFunConfig } from './config/validate.js';
import { Executor, type ExecutorStats, type RateLimitGate } from './executor.js';
import { HookRegistry, type Hook } from './hooks.js';
import { Resilience, RESILIENCE_DEFAULTS, type ResilienceOptions } from './resilience.js';
import { NodeSelector } from './select/node-selector.js';
import { RelayGroups, relayService, type RelayOptions, type RelayStats } from './relay.js';
import {
  RateLimits,
  type RateLimitsHealth,
  type RateLimitsOptions,
} from '../ratelimit/rate-limits.js';
import { CancelledError, InvalidArgumentError, InvalidStateError } from '../errors.js';
import { ConfigError, OptionError } from '../config/errors.js';

/** Options of `createGenApi`: the gen_api channel's options plus the executor's. */
export interface GenApiOptions extends GenApiChannelOptions {
  /** Show failure reasons to clients ("Internal Server Error: <reason>"). Default false. */
  detailError?: boolean;
  /** Global argument limits (PhoenixGenApi's argument_handler config). */
  argLimits?: Partial<ArgLimits>;
  /** Initial stream credit granted to workers. Default 32 chunks. */
  streamCredit?: number;
  /** Bulkhead and circuit breaker settings. */
  resilience?: Partial<ResilienceOptions>;
  /** Config pushes and pulls must carry this token (null: none required). */
  pushToken?: string | null;
  /** A custom limiter; `rateLimits` configures the built-in one instead. */
  rateLimiter?: RateLimitGate | null;
  /** Built-in rate limits (src/ratelimit): policies, connect limit, cluster modes. */
  rateLimits?: RateLimitsOptions;
  /**
   * Serve relay groups as an in-process service (`true`: named "relay", default limits); across
   * gateways once the cluster connects (protocol/relay.md). Default off.
   */
  relay?: boolean | RelayOptions;
}

/** How `genApi.startNats` retries while NATS is not reachable. */
export interface NatsRetryOptions {
  /** Pause between two connect attempts. Default 500 ms. */
  retryMs?: number;
  /** A failed attempt is logged the first time, then at most once per this span. Default 30 000 ms. */
  logEveryMs?: number;
}

/** The defaults of `NatsRetryOptions`. */
export const NATS_RETRY_DEFAULTS: Readonly<Required<NatsRetryOptions>> = {
  retryMs: 500,
  logEveryMs: 30_000,
};

/** `genApi.startNats`: the settings are checked; the connection is made in the background. */
export interface NatsStart {
  /**
   * Resolves once connected (discovery, config sync, cluster and shared rate limits started);
   * rejects with a NatsConnectError when the server refuses the credentials or TLS (no retry
   * would help), or a CancelledError when the gateway closed first.
   */
  readonly connected: Promise<void>;
  /**
   * How the first attempt went: `connected` (and `connected` resolved), `retrying` (no server
   * answered; the retries go on in the background) or `failed` (`connected` rejected).
   */
  readonly firstAttempt: Promise<'connected' | 'retrying' | 'failed'>;
}

/** `GenApi.health()`: what `/admin/health` reports about gen_api. */
export interface GenApiHealth {
  /** Function configs known (in-process and from workers). */
  functions: number;
  /** Services with at least one function config. */
  services: string[];
  /** Configs rejected by validation and kept for diagnosis. */
  failedConfigs: number;
  /** Requests and streams in flight, totals. */
  executor: ExecutorStats;
  /** Circuit breaker states by service and by instance (`closed`, `open`, `half_open`, `isolated`). */
  breakers: { services: Record<string, string>; instances: Record<string, string> };
  /** The NATS link, or null before `connectNats`. */
  nats: NatsHealth | null;
  /** The built-in rate limits, or null when not configured. */
  rateLimits: RateLimitsHealth | null;
  /** Relay groups (owned, forwarded, delivered, dropped), or null when relay is off. */
  relay: RelayStats | null;
}

/**
 * PhoenixGenApi on this gateway: the gen_api channel, the function config registry (fed by
 * in-process services, worker pushes and pulls), hooks, and the executor over the in-process bus
 * and, once connected, NATS.
 */
export class GenApi {
  /** @internal The function config registry. */
  readonly registry = new ConfigRegistry();
  /** @internal Configs that failed validation. */
  readonly failed = new FailedConfigs();
  /** @internal Named hooks (`hook`). */
  readonly hooks = new HookRegistry();
  /** @internal The in-process bus (`register`). */
  readonly local: LocalBus;
  /** @internal Validates and applies pushed and pulled configs. */
  readonly receiver: ConfigReceiver;
  /** @internal Bulkheads and breakers. */
  readonly resilience: Resilience;
  /** @internal Runs requests. */
  readonly executor: Executor;
  /** @internal Relay groups, when enabled. */
  readonly relay: RelayGroups | null = null;
  /** @internal The built-in rate limits, when configured (the admin API and connect limit use them). */
  readonly rateLimits: RateLimits | null;
  /** @internal */
  readonly gateway: Gateway;
  /** @internal */
  readonly options: GenApiOptions;
  private link: NatsLink | null = null;
  /** Set while a NATS connection is being made (startNats, connectNats). */
  private connecting: AbortController | null = null;

  /** @internal Use `createGenApi(gateway, options)`. */
  constructor(gateway: Gateway, options: GenApiOptions = {}) {
    this.gateway = gateway;
    this.options = options;
    // In-process handlers' ctx.broadcast / ctx.disconnect go through the gateway (cluster-wide).
    this.local = new LocalBus(localBroadcaster(gateway), gateway.logger);
    this.receiver = new ConfigReceiver(this.registry, this.failed, {
      pushToken: options.pushToken ?? null,
      nodesDefault: 'nats',
      hookNames: this.hooks.names,
    });
    this.resilience = new Resilience({ ...RESILIENCE_DEFAULTS, ...options.resilience });
    if (options.rateLimits && options.rateLimiter)
      throw new OptionError('give either rateLimits (built-in) or rateLimiter (custom), not both');
    const limits = options.rateLimits;
    this.rateLimits = limits
      ? // The gateway's clock (a manual one in tests) also drives local rate-limit windows.
        new RateLimits(limits, gateway.logger.child({ component: 'ratelimit' }), {
          monotonic: gateway.wheel.clock,
        })
      : null;
    this.executor = new Executor({
      registry: this.registry,
      local: this.local,
      nats: null,
      selector: new NodeSelector(),
      hooks: this.hooks,
      resilience: this.resilience,
      wheel: gateway.wheel,
      logger: gateway.logger.child({ component: 'gen_api' }),
      gatewayId: gateway.nodeId,
      argLimits: { ...DEFAULT_ARG_LIMITS, ...options.argLimits },
      detailError: options.detailError ?? false,
      rateLimiter: this.rateLimits?.limiter ?? options.rateLimiter ?? null,
      telemetry: gateway.telemetry,
      ...(options.streamCredit === undefined ? {} : { streamCredit: options.streamCredit }),
    });
    gateway.onClose(() => this.close());
    gateway.addDrainParticipant({
      idle: () => this.executor.whenIdle(),
      cut: () => this.executor.interruptStreams(),
    });
    if (options.relay) {
      this.relay = new RelayGroups(
        options.event ?? GEN_API_DEFAULTS.event,
        gateway.pubsub,
        gateway.nodeId,
        typeof options.relay === 'object' ? options.relay : {},
      );
      this.register(relayService(this.relay));
      gateway.addClusterComponent(this.relay.cluster);
    }
  }

  /** Serves the gen_api channel on `socket` under the configured topics. */
  mount<A extends Assigns>(socket: SocketMount<A>): this {
    const handler = genApiChannel(this.executor, this.options);
    for (const topic of this.options.topics ?? GEN_API_DEFAULTS.topics)
      socket.channel(topic, handler);
    return this;
  }

  /** Runs a service in-process (`nodes: "local"`): the embedded default, no NATS needed. */
  register(service: ServiceDefinition): this {
    const configs = [...service.functions.values()].map((fn) => {
      const result = validateFunConfig(
        { ...fn.config, nodes: 'local' },
        { nodesDefault: 'local', hookNames: this.hooks.names },
      );
      if (!result.ok)
        throw new InvalidArgumentError(
          `${service.name}.${fn.requestType}: ${result.errors.join('; ')}`,
        );
      return result.config;
    });
    this.local.register(service);
    for (const config of configs) this.registry.add(config);
    return this;
  }

  /** Names a hook that function configs can refer to in before_execute / after_execute. */
  hook(name: string, hook: Hook): this {
    this.hooks.register(name, hook);
    return this;
  }

  /**
   * Connects to NATS: functions of `nodes: "nats"` configs run on workers from then on. Resolves
   * once connected and the first discovery round ran (while no server answers, it waits).
   */
  async connectNats(options: NatsGatewayOptions): Promise<void> {
    this.checkNats(options);
    await this.openNats(options, connectNats, new AbortController());
  }

  /**
   * Connects to NATS in the background: resolves as soon as the settings are checked (a
   * ConfigError, InvalidArgumentError or unreadable credentials file rejects at once), then tries
   * every `retryMs` until a server answers, logging failed attempts at a bounded rate. Until then
   * gen_api requests for services not served in-process answer `Service temporarily unavailable`
   * (can_retry) and `/readyz` reports `nats`.
   */
  async startNats(options: NatsGatewayOptions, retry: NatsRetryOptions = {}): Promise<NatsStart> {
    this.checkNats(options);
    const { retryMs, logEveryMs } = { ...NATS_RETRY_DEFAULTS, ...retry };
    const abort = new AbortController();
    const logger = this.gateway.logger.child({ component: 'nats' });
    let lastLogged = -Infinity;
    let firstAttemptDone!: (how: 'connected' | 'retrying' | 'failed') => void;
    const firstAttempt = new Promise<'connected' | 'retrying' | 'failed'>(
      (resolve) => (firstAttemptDone = resolve),
    );
    let checked!: () => void;
    const settingsChecked = new Promise<void>((resolve) => (checked = resolve));
    // NatsLink.connect checks the settings, then calls this: from here on only the server counts.
    const connect = (clientOptions: ConnectionOptions, who: string): Promise<NatsConnection> => {
      checked();
      return connectNatsRetrying(
        clientOptions,
        who,
        retryMs,
        (failure, attempt) => {
          firstAttemptDone('retrying');
          const now = Date.now();
          if (now - lastLogged < logEveryMs) return;
          lastLogged = now;
          logger.warn(
            { attempt, err: failure.message, retryMs },
            'NATS not reachable, retrying in the background (gen_api on NATS answers "Service temporarily unavailable" meanwhile)',
          );
        },
        abort.signal,
      );
    };
    this.executor.awaitingNats = (service) => !this.local.has(service);
    const connected = this.openNats(options, connect, abort);
    connected.then(
      () => firstAttemptDone('connected'),
      () => {
        // The caller gets the error through NatsStart.connected; NATS is not coming.
        this.executor.awaitingNats = null;
        firstAttemptDone('failed');
      },
    );
    await Promise.race([settingsChecked, connected]);
    return { connected, firstAttempt };
  }

  /** Settings checked before any connection is tried (ConfigError). */
  private checkNats(options: NatsGatewayOptions): void {
    if (this.link || this.connecting)
      throw new InvalidStateError('gen_api is already connected to NATS');
    const limits = this.options.rateLimits;
    if (
      options.trustedNetwork !== true &&
      limits?.clusterSecret === undefined &&
      limits?.policies?.some((policy) => (policy.mode ?? 'local') !== 'local') === true
    )
      // Unsigned hits from anyone on NATS could lock any user out on every gateway.
      throw new ConfigError(
        'rate-limit policies shared over NATS need rateLimits.clusterSecret (the gateways sign ' +
          'their hits and policy changes with it), or nats.trustedNetwork: true',
      );
  }

  private async openNats(
    options: NatsGatewayOptions,
    connect: (options: ConnectionOptions, who: string) => Promise<NatsConnection>,
    abort: AbortController,
  ): Promise<void> {
    this.connecting = abort;
    let link: NatsLink;
    try {
      link = await NatsLink.connect(options, {
        gatewayId: this.gateway.nodeId,
        receiver: this.receiver,
        logger: this.gateway.logger,
        isLocal: (service) => this.local.has(service),
        onInstanceLost: (instance) => this.resilience.forgetInstance(instance.id),
        pushToken: this.options.pushToken ?? null,
        connect,
      });
    } finally {
      if (this.connecting === abort) this.connecting = null;
    }
    if (abort.signal.aborted) {
      // Closed while the first discovery round ran.
      await link.close();
      throw new CancelledError('gen_api closed before NATS connected');
    }
    this.link = link;
    this.executor.setNats(link.bus);
    this.executor.awaitingNats = null;
    if (options.cluster !== false) {
      // The same servers, prefix and credentials (NatsGatewayOptions extends ClusterOptions).
      await this.gateway.connectCluster(options);
    }
    await this.rateLimits?.attach(
      { nc: link.nc, connected: () => link.connected, subjects: link.subjects },
      natsClientOptions(options),
    );
  }

  /** @internal Whether NATS is configured but not connected yet (`/readyz` reports `nats`). */
  get natsPending(): boolean {
    return this.connecting !== null;
  }

  /** @internal The NATS link, once connected (discovery, config sync, bus). */
  get nats(): NatsLink | null {
    return this.link;
  }

  /**
   * Pulls the configs of every live NATS service whose config version this gateway lacks; with
   * `force`, of every service, re-applying equal versions too (PhoenixGenApi's ConfigPuller
   * pull/force_pull). Resolves true when every pull succeeded; false without NATS.
   */
  async pullConfigs(options: { force?: boolean } = {}): Promise<boolean> {
    return this.link ? this.link.sync.pullAll(options) : false;
  }

  /** Counters and states for health checks (`/admin/health` reports them). */
  health(): GenApiHealth {
    return {
      functions: this.registry.count(),
      services: this.registry.services(),
      failedConfigs: this.failed.count(),
      executor: { ...this.executor.stats },
      breakers: this.resilience.snapshot(),
      nats: this.link?.health() ?? null,
      rateLimits: this.rateLimits?.health() ?? null,
      relay: this.relay?.stats() ?? null,
    };
  }

  /** Disconnects from NATS and stops the rate limits; the gateway's `close()` calls it. */
  async close(): Promise<void> {
    this.connecting?.abort();
    this.connecting = null;
    this.executor.awaitingNats = null;
    const link = this.link;
    this.link = null;
    this.executor.setNats(null);
    await this.rateLimits?.close();
    await link?.close();
  }
}

/** Creates the gen_api layer of `gateway`; `mount` it on a socket to serve the gen_api channel. */
export function createGenApi(gateway: Gateway, options?: GenApiOptions): GenApi {
  return new GenApi(gateway, options);
}
