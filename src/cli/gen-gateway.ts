#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { createLogger } from '../log/logger.js';
import {
  ConfigError,
  LOG_LEVELS,
  loadConfig,
  withNatsCredentialEnv,
  type GatewayConfig,
  type LogLevel,
} from '../config/file.js';
import { OptionError } from '../config/errors.js';
import { InvalidArgumentError, OutOfRangeError } from '../errors.js';
import { NatsConnectError } from '../nats/connection.js';
import { PolicyError } from '../ratelimit/policy.js';
import { startGateway } from '../server.js';
import { CliError, listenAddress, parseCli, parseProcesses, USAGE } from './args.js';
import { CONFIG_EXIT_CODE, processIndex, processNodeId, superviseProcesses } from './processes.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** How long an uncaught exception leaves for closing the sockets before the process exits. */
const UNCAUGHT_DRAIN_MS = 5_000;

async function main(): Promise<number> {
  let cli;
  try {
    cli = parseCli(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`gen-gateway: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (cli.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (cli.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }

  let config: GatewayConfig = {};
  try {
    if (cli.config !== undefined) config = await loadConfig(cli.config);
    // GEN_GATEWAY_NATS_CREDS/USER/PASS/TOKEN: secrets from the environment replace the file's.
    config = withNatsCredentialEnv(config, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gen-gateway: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const level = cli.logLevel ?? config.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(level as LogLevel)) {
    process.stderr.write(`gen-gateway: invalid log level ${JSON.stringify(level)}\n`);
    return 2;
  }
  const index = processIndex();
  if (index === null) {
    let processes;
    try {
      processes =
        cli.processes ??
        (config.processes === undefined
          ? 1
          : parseProcesses(config.processes, `${cli.config}: "processes"`));
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      process.stderr.write(`gen-gateway: ${err.message}\n`);
      return 2;
    }
    if (processes > 1) {
      if (cli.nats === undefined && config.nats?.servers === undefined) {
        process.stderr.write(
          `gen-gateway: --processes ${processes} needs NATS: give --nats URL or nats.servers in the config ` +
            '(each process is a node of the gateway cluster; without NATS the gateway runs as one process)\n',
        );
        return 2;
      }
      return superviseProcesses(processes, createLogger({ level: level as LogLevel }));
    }
  }
  // One of `--processes N`: its index in every log line, its own node id.
  const logger =
    index === null
      ? createLogger({ level: level as LogLevel })
      : createLogger({ level: level as LogLevel }).child({ process: index });
  if (index !== null) config = { ...config, nodeId: processNodeId(config.nodeId, index) };

  let running;
  try {
    running = await startGateway({
      config,
      fromFile: cli.config !== undefined,
      demo: cli.demo,
      logger,
      ...listenAddress(cli, config),
      ...(cli.nats === undefined ? {} : { nats: cli.nats }),
    });
  } catch (err) {
    if (err instanceof OptionError) {
      process.stderr.write(`gen-gateway: invalid socket option: ${err.message}\n`);
      return CONFIG_EXIT_CODE;
    }
    if (err instanceof PolicyError) {
      process.stderr.write(`gen-gateway: invalid rate limits: ${err.message}\n`);
      return CONFIG_EXIT_CODE;
    }
    // Other options (cluster, presence, gen_api) are checked where they are applied; the message
    // names the option.
    if (err instanceof OutOfRangeError || err instanceof InvalidArgumentError) {
      process.stderr.write(`gen-gateway: invalid option: ${err.message}\n`);
      return CONFIG_EXIT_CODE;
    }
    // A setting the gateway refuses at start (e.g. NATS without worker authentication).
    if (err instanceof ConfigError) {
      process.stderr.write(`gen-gateway: ${err.message}\n`);
      return CONFIG_EXIT_CODE;
    }
    // Refused credentials, TLS or an unreadable creds file fail every restart alike.
    if (err instanceof NatsConnectError && err.reason !== 'connect') {
      process.stderr.write(`gen-gateway: ${err.message}\n`);
      return CONFIG_EXIT_CODE;
    }
    logger.fatal({ err }, 'gateway failed to start');
    // A port in use or not allowed fails every process of `--processes N` alike: no restarts.
    const code = (err as { code?: unknown }).code;
    return index !== null && (code === 'EADDRINUSE' || code === 'EACCES') ? CONFIG_EXIT_CODE : 1;
  }

  const { gateway, natsConnected } = running;
  let stopping = false;
  // First signal: drain (readiness 503, no new connections, in-flight requests finish, sockets
  // closed with 1012 in batches, Presence leaves the cluster), then exit 0. Second: exit 1 at once.
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting at once');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: draining');
    gateway.drain().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // NATS came up later but refuses the credentials or TLS: no retry would help (as at start).
  natsConnected?.catch((err: unknown) => {
    if (!(err instanceof NatsConnectError) || stopping) return;
    stopping = true;
    process.stderr.write(`gen-gateway: ${err.message}\n`);
    logger.fatal({ err }, 'NATS refused this gateway; exiting');
    const exit = () => process.exit(CONFIG_EXIT_CODE);
    gateway.close().then(exit, exit);
  });
  // A process of `--processes N` stops on the primary's SIGTERM; a terminal's Ctrl-C reaches it
  // too, and the primary turns that into its SIGTERM (a second signal would be a hard stop).
  process.on('SIGINT', index === null ? stop : () => undefined);
  process.on('SIGTERM', stop);
  // Errors that escape user code (a channel's timer, a promise nobody awaits) must not take every
  // socket down silently. A rejection nobody handled leaves the process consistent: log it and
  // keep serving. A thrown exception may have left anything half done: log it, close the sockets
  // (1012, clients reconnect) and exit 1 so a supervisor restarts a clean process.
  process.on('unhandledRejection', (reason: unknown) => {
    logger.error({ err: reason }, 'unhandled promise rejection (kept serving)');
  });
  process.on('uncaughtException', (err: Error) => {
    logger.fatal({ err }, 'uncaught exception: closing the sockets and exiting');
    if (stopping) process.exit(1);
    stopping = true;
    const exit = () => process.exit(1);
    setTimeout(exit, UNCAUGHT_DRAIN_MS).unref();
    gateway.close().then(exit, exit);
  });
  return -1;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`gen-gateway: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
