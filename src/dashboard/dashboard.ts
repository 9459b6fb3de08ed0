import type { Gateway } from '../gateway.js';
import type { GenApi } from '../genapi/gen-api.js';
import type { AuthThrottle } from '../admin/admin.js';
import { viewerConnect, type DashboardAccess, type ViewerAssigns } from './access.js';
import { dashboardChannel, DASHBOARD_TOPIC } from './channel.js';
import { DashboardHub, type RequestEvents } from './hub.js';
import { resolveDashboardOptions, type DashboardOptions } from './options.js';
import { dashboardRoute } from './route.js';

/** What `mountDashboard` needs besides the gateway. */
export interface DashboardSetup {
  readonly genApi: GenApi;
  /** Who may watch (`dashboardAccess`). */
  readonly access: DashboardAccess;
  readonly options?: DashboardOptions;
  /** Where the per-function figures come from. Default: the gateway's `genapi_request` telemetry. */
  readonly requests?: RequestEvents;
  /** Failed token attempts, shared with the admin API (token mode). */
  readonly throttle: AuthThrottle | null;
}

/**
 * Serves the live dashboard on `gateway`: the page at `options.path` and, on its own socket mount
 * (`options.socketPath`, WebSocket only, so the app socket's connect hook and options do not
 * apply), the `admin:dashboard` channel that pushes a snapshot every `intervalMs`.
 */
export function mountDashboard(gateway: Gateway, setup: DashboardSetup): DashboardHub {
  const options = resolveDashboardOptions(setup.options);
  const { access } = setup;
  const logger = gateway.logger.child({ component: 'dashboard' });
  const hub = new DashboardHub({
    gateway,
    genApi: setup.genApi,
    options,
    requests: setup.requests ?? ((handler) => gateway.telemetry.on('genapi_request', handler)),
    logger,
  });
  const mount = gateway.socket<ViewerAssigns>(options.socketPath, {
    connect: viewerConnect(access, setup.throttle),
    // Loopback mode: only pages on a local name (no DNS-rebound site). Token mode: the token is
    // the credential, never sent by a browser on its own, so the origin adds nothing.
    checkOrigin: access.kind === 'loopback',
    trustedProxies: access.kind === 'token' ? (access.admin.trustedProxies ?? []) : [],
    longpoll: false,
    maxChannels: 1,
    maxConnections: options.maxViewers,
    maxConnectionsPerIp: options.maxViewers,
  });
  mount.channel(DASHBOARD_TOPIC, dashboardChannel(hub));
  gateway.route(options.path, dashboardRoute(options.path, options.socketPath, access.kind));
  gateway.onClose(() => hub.close());
  logger.info(
    { path: options.path, socket: options.socketPath, access: access.kind },
    'dashboard served',
  );
  return hub;
}
