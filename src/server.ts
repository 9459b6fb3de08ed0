import type { AddressInfo } from 'node:net';
import { withDeadline } from './util/deadline.js';
import { Gateway } from './gateway.js';
import { GATEWAY_DEFAULTS } from './config/gateway-defaults.js';
import type { GatewayConfig } from './config/file.js';
import type { Assigns } from './channel/types.js';
import { demoConnect, demoRoomChannel } from './demo/chat.js';
import { demoRateLimit, demoService } from './demo/service.js';
import { adminRoute, createAuthThrottle } from './admin/admin.js';
import { dashboardAccess } from './dashboard/access.js';
import { mountDashboard } from './dashboard/dashboard.js';
import { setUpAuth } from './auth/config.js';
import { ConfigError } from './config/errors.js';
import { healthReport } from './admin/health.js';
import { PROBE_PATHS, probeRoutes } from './admin/probes.js';
import { serveMetrics, type ServedMetrics } from './metrics/serve.js';
import { GenApi } from './genapi/gen-api.js';
import type { Logger } from './log/logger.js';
import type { RateLimitsOptions } from './ratelimit/rate-limits.js';
import type { Clock } from './util/clock.js';
import { isLoopbackHost } from './util/loopback.js';

/** Logged (warn) when the demo listens on anything but a loopback address. */
export const DEMO_EXPOSED_WARNING =
  'DEMO MODE ON A NON-LOOPBACK ADDRESS: identity comes from connect params, so anyone who can ' +
  'reach this gateway can be anyone (dev only; a real deployment needs a config with a connect hook)';

/** Logged (warn) when the demo runs on NATS: workers then act for whoever a client claims to be. */
export const DEMO_ON_NATS_WARNING =
  'DEMO MODE ON NATS: identity comes from connect params, so the workers on this NATS act for ' +
  'whoever a client claims to be (dev only; a real deployment needs a config with a connect hook)';

/** Logged (info) without a config file and without the demo: how to get either. */
export const NO_DEMO_HINT =
  'no config file and no --demo: only gen_api is served, and without a connect hook every call ' +
  'answers "Authentication required"; start with --demo for the dev demo, or give --config FILE';

export interface StartOptions {
  config: GatewayConfig;
  /** Whether the config came from a file (without one and without the demo, a hint is logged). */
  fromFile: boolean;
  /** `--demo`: serve the dev demo whatever the config's `demo` says. Default false. */
  demo?: boolean;
  host?: string;
  port?: number;
  /** NATS URL(s) from the command line; wins over the config file's nats.servers. */
  nats?: string;
  logger: Logger;
  /**
   * Monotonic clock in ms for the gateway (timer wheel, per-socket message rate) and the local
   * rate-limit policies. Tests only: a manual clock makes time-based limits exact.
   */
  clock?: Clock;
}

export interface RunningGateway {
  gateway: Gateway;
  genApi: GenApi;
  address: AddressInfo;
  /**
   * With NATS: resolves once connected (at once when it was up at start); rejects with a
   * NatsConnectError when a server refuses the credentials or TLS later (no retry would help),
   * or a CancelledError when the gateway closed first. Null without NATS.
   */
  natsConnected: Promise<void> | null;
  /** The metrics registry and route, and the `ops` listener's address (null without one). */
  metrics: ServedMetrics;
}

/**
 * Longest `startGateway` waits for NATS before it listens: it listens at once when the first
 * attempt fails (no server answers), and after this much when a server is slow to answer; the
 * connection is then made in the background.
 */
export const NATS_START_WAIT_MS = 5_000;

/**
 * Builds a gateway from a config (what the `gen-gateway` command runs): one socket endpoint
 * serving the gen_api channel and the config's channels, NATS when configured, the dev demo
 * when enabled (the demo service in-process unless NATS is used, where `npm run worker:demo`
 * serves it), the config's setup hook, then listen.
 */
export async function startGateway(options: StartOptions): Promise<RunningGateway> {
  const { config, logger } = options;
  // Only when asked for: its identity comes from connect params, so anyone can be anyone.
  const demo = options.demo === true || config.demo === true;
  const host = options.host ?? config.host ?? GATEWAY_DEFAULTS.host;
  const gateway = new Gateway({
    logger,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(config.nodeId === undefined ? {} : { nodeId: config.nodeId }),
    ...(config.secret === undefined ? {} : { secret: config.secret }),
    ...(config.cluster === undefined ? {} : { cluster: config.cluster }),
    ...(config.presence === undefined ? {} : { presence: config.presence }),
    ...(config.drain === undefined ? {} : { drain: config.drain }),
  });
  const { path = '/socket', ...socketOptions } = config.socket ?? {};
  const servers = options.nats ?? config.nats?.servers;
  if (config.auth !== undefined && socketOptions.connect !== undefined)
    throw new ConfigError('"auth" and "socket.connect" both decide identity: keep one of them');
  if (demo) {
    if (config.auth === undefined)
      gateway.logger.warn(
        'demo mode: user_id/device_id come from connect params (insecure, dev only)',
      );
    // Warn, not refuse: a container or a LAN demo is legitimate, but must not go unnoticed.
    if (!isLoopbackHost(host)) gateway.logger.warn({ host }, DEMO_EXPOSED_WARNING);
    if (servers !== undefined) gateway.logger.warn({ servers }, DEMO_ON_NATS_WARNING);
  } else if (!options.fromFile) {
    gateway.logger.info(NO_DEMO_HINT);
  }
  const rateLimits = withDemoRateLimit(config.rateLimits, demo, servers !== undefined);
  // Always present (empty without policies) so the admin API can add policies at runtime.
  const genApi = new GenApi(gateway, {
    ...(demo ? { relay: true } : {}),
    ...config.genApi,
    ...(config.genApi?.rateLimiter
      ? {}
      : {
          rateLimits,
        }),
  });
  // The auth worker is asked over the gen_api NATS link, once connected (until then: unavailable).
  const auth =
    config.auth === undefined
      ? null
      : setUpAuth(config.auth, gateway.logger, () => {
          const link = genApi.nats;
          return link === null
            ? null
            : { nc: link.nc, subjects: link.subjects, connected: () => link.connected };
        });
  const mount = gateway.socket<Assigns>(path, {
    ...(demo ? { connect: demoConnect, checkOrigin: false } : {}),
    // With auth, identity comes from the token only, in the demo too.
    ...(auth === null
      ? {}
      : {
          connect: auth.connect,
          ...(auth.authorizeJoin === null ? {} : { authorizeJoin: auth.authorizeJoin }),
          ...(auth.refreshToken === null ? {} : { refreshToken: auth.refreshToken }),
        }),
    ...(genApi.rateLimits ? { connectLimit: genApi.rateLimits.connectLimit } : {}),
    ...socketOptions,
  });
  genApi.mount(mount);
  const probes = probeRoutes(gateway, genApi);
  gateway.route(PROBE_PATHS.health, probes.health).route(PROBE_PATHS.ready, probes.ready);
  // One failed-token budget per IP for the admin API and the dashboard.
  const adminThrottle = config.admin ? createAuthThrottle(config.admin) : null;
  const metrics = await serveMetrics(gateway, genApi, config.metrics, {
    auth: auth?.stats ?? null,
  });
  if (config.admin) {
    const admin = { path: '/admin', ...config.admin };
    gateway.route(
      admin.path,
      adminRoute(admin, {
        rateLimits: genApi.rateLimits,
        logger: gateway.logger.child({ component: 'admin' }),
        health: () => healthReport(gateway, genApi, auth?.stats ?? null),
        ...(adminThrottle === null ? {} : { throttle: adminThrottle }),
      }),
    );
  }
  const dashboard = dashboardAccess({
    enabled: config.dashboard?.enabled,
    admin: config.admin,
    demo,
  });
  if (dashboard !== null)
    mountDashboard(gateway, {
      genApi,
      access: dashboard,
      ...(config.dashboard === undefined ? {} : { options: config.dashboard }),
      throttle: adminThrottle,
    });
  if (demo) {
    mount.channel('room:*', demoRoomChannel(gateway));
    if (servers === undefined) genApi.register(demoService);
  }
  for (const route of config.channels ?? []) mount.channel(route.pattern, route.handler);
  await config.setup?.(gateway, genApi);
  let natsConnected: Promise<void> | null = null;
  if (servers !== undefined) {
    gateway.logger.info({ servers }, 'connecting to NATS');
    // Settings are checked now (a ConfigError fails the start); the connection is made in the
    // background, so the gateway serves what needs no NATS while NATS is down.
    const start = await genApi.startNats({
      // The demo has no worker authentication to offer: it runs on a trusted network by definition.
      ...(demo ? { trustedNetwork: true } : {}),
      ...config.nats,
      servers,
    });
    natsConnected = start.connected;
    // NATS up: connected (discovery ran) before the port opens, as a client would expect. Down:
    // the first refused attempt opens it at once.
    const firstAttempt = await withDeadline(
      start.firstAttempt,
      NATS_START_WAIT_MS,
      () => 'slow' as const,
    );
    if (firstAttempt === 'failed') {
      // Credentials or TLS refused: the same at every retry, so the start fails (exit 2).
      await gateway.close();
      await natsConnected;
    }
  }
  let address: AddressInfo;
  try {
    address = await gateway.listen(options.port ?? config.port ?? GATEWAY_DEFAULTS.port, host);
  } catch (err) {
    await gateway.close();
    throw err;
  }
  return { gateway, genApi, address, natsConnected, metrics };
}

/** The config's rate limits, plus the demo's `demo.limited` policy in demo mode (unless overridden). */
function withDemoRateLimit(
  options: RateLimitsOptions | undefined,
  demo: boolean,
  onNats: boolean,
): RateLimitsOptions {
  if (!demo) return options ?? {};
  const policy = demoRateLimit(onNats ? 'eventual' : 'local');
  const policies = options?.policies ?? [];
  if (policies.some((entry) => entry.id === policy.id)) return options ?? {};
  return { ...options, policies: [...policies, policy] };
}
