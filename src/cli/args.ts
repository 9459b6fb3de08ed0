import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { GatewayError } from '../errors.js';
import { GATEWAY_DEFAULTS } from '../config/gateway-defaults.js';

export interface CliOptions {
  host?: string;
  port?: number;
  config?: string;
  logLevel?: string;
  nats?: string;
  /** `--processes`: gateway processes sharing the port (parsed; "auto" is the core count). */
  processes?: number;
  /** `--demo`: serve the dev demo, whatever the config file's `demo` says. */
  demo: boolean;
  help: boolean;
  version: boolean;
}

/** Where the gateway listens when neither a flag, the environment nor the config file says. */
export const DEFAULT_HOST = GATEWAY_DEFAULTS.host;
export const DEFAULT_PORT = GATEWAY_DEFAULTS.port;

/** Upper bound on `--processes` / `processes` (a typo such as 400 must not fork 400 gateways). */
export const MAX_PROCESSES = 128;

export class CliError extends GatewayError {
  override readonly name = 'CliError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_CLI', message, options);
  }
}

export const USAGE = `Usage: gen-gateway [options]

Options:
  --host HOST        interface to listen on (env HOST, default ${DEFAULT_HOST})
  --port PORT        port to listen on, 0 for any free port (env PORT, default ${DEFAULT_PORT})
  --config FILE      gateway config: .json, .js or .mjs (env GATEWAY_CONFIG)
  --nats URL         run gen_api functions on NATS workers (default: the embedded bus)
  --processes N|auto gateway processes sharing the port, each a cluster node; auto = one per
                     core; N > 1 needs NATS (default 1)
  --demo             serve the dev demo (see README): room:* chat and the demo gen_api
                     service, identity from connect params (insecure, dev only; wins over
                     the config's "demo")
  --log-level LEVEL  trace|debug|info|warn|error|fatal|silent (env LOG_LEVEL, default info)
  -h, --help         show this help
  -v, --version      print the version

Flags win over environment variables, which win over the config file.
The demo runs only when asked for (--demo, or "demo": true in the config; npm start passes
--demo). Its gen_api service runs in-process, or on NATS workers (npm run worker:demo) with
--nats. Off a loopback address, or on NATS, the demo logs a warning: anyone can be anyone.`;

function parsePort(text: string, source: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535)
    throw new CliError(`${source}: invalid port ${JSON.stringify(text)}`);
  return port;
}

/** Parses `--processes` / the config's `processes`: "auto" (one per core) or 1 … MAX_PROCESSES. */
export function parseProcesses(value: unknown, source: string): number {
  if (value === 'auto') return Math.min(availableParallelism(), MAX_PROCESSES);
  const count = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_PROCESSES) {
    throw new CliError(
      `${source}: must be "auto" or an integer from 1 to ${MAX_PROCESSES}, got ${JSON.stringify(value)}`,
    );
  }
  return count;
}

/** Reads flags, then fills what they leave unset from the environment. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): CliOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        config: { type: 'string' },
        'log-level': { type: 'string' },
        nats: { type: 'string' },
        processes: { type: 'string' },
        demo: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const options: CliOptions = {
    demo: values.demo === true,
    help: values.help === true,
    version: values.version === true,
  };
  const host = values.host ?? env.HOST;
  if (host !== undefined && host !== '') options.host = host;
  if (values.port !== undefined) options.port = parsePort(values.port, '--port');
  else if (env.PORT !== undefined && env.PORT !== '') options.port = parsePort(env.PORT, 'PORT');
  const config = values.config ?? env.GATEWAY_CONFIG;
  if (config !== undefined && config !== '') options.config = config;
  if (values.nats !== undefined) {
    if (!/^(nats|tls|ws|wss):\/\/\S+$|^[\w.-]+:\d+$/.test(values.nats))
      throw new CliError(`--nats: invalid NATS URL ${JSON.stringify(values.nats)}`);
    options.nats = values.nats;
  }
  if (values.processes !== undefined)
    options.processes = parseProcesses(values.processes, '--processes');
  const logLevel = values['log-level'] ?? env.LOG_LEVEL;
  if (logLevel !== undefined && logLevel !== '') options.logLevel = logLevel;
  return options;
}

/** The address to listen on: flags and environment (as parseCli merged them), then the config file, then the defaults. */
export function listenAddress(
  cli: Pick<CliOptions, 'host' | 'port'>,
  config: { host?: string; port?: number },
): { host: string; port: number } {
  return {
    host: cli.host ?? config.host ?? DEFAULT_HOST,
    port: cli.port ?? config.port ?? DEFAULT_PORT,
  };
}
