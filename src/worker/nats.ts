import type { ServiceDefinition } from './define.js';
import type { RunningService, ServeOptions } from './serve/options.js';
import { WorkerServer } from './serve/server.js';

export { SERVE_DEFAULTS, type RunningService, type ServeOptions } from './serve/options.js';

/**
 * Serves a service as a NATS micro service (visible to `nats micro ls`, `$SRV.PING/INFO/STATS`):
 * one queue-group endpoint per function (and per permission check), a config endpoint, and one
 * direct endpoint `<prefix>.inst.<service>.<id>.>` through which gateways address this very instance. The
 * config is pushed to every gateway on start.
 */
export function serve(
  definition: ServiceDefinition,
  options: ServeOptions,
): Promise<RunningService> {
  return WorkerServer.start(definition, options);
}
