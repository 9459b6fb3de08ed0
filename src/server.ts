import type { AddressInfo } from 'node:net';
import { Gateway } from './gateway.js';
import type { GatewayConfig } from './config/file.js';
import type { Assigns } from './channel/types.js';
import { demoConnect, demoRoomChannel } from './demo/chat.js';
import type { Logger } from './log/logger.js';

export interface StartOptions {
  config: GatewayConfig;
  /** Whether the config came from a file (the demo is off by default then). */
  fromFile: boolean;
  host?: string;
  port?: number;
  logger: Logger;
}

export interface RunningGateway {
  gateway: Gateway;
  address: AddressInfo;
}

/**
 * Builds a gateway from a config (what the `gen-gateway` command runs): one socket endpoint,
 * its channels, the dev demo when enabled, the config's setup hook, then listen.
 */
export async function startGateway(options: StartOptions): Promise<RunningGateway> {
  const { config, logger } = options;
  const demo = config.demo ?? !options.fromFile;
  const gateway = new Gateway({
    logger,
    ...(config.nodeId === undefined ? {} : { nodeId: config.nodeId }),
    ...(config.secret === undefined ? {} : { secret: config.secret }),
  });
  const { path = '/socket', ...socketOptions } = config.socket ?? {};
  if (demo) {
    gateway.logger.warn('demo mode: user_id/device_id come from connect params (insecure, dev only)');
  }
  const mount = gateway.socket<Assigns>(path, {
    ...(demo ? { connect: demoConnect, checkOrigin: false } : {}),
    ...socketOptions,
  });
  if (demo) mount.channel('room:*', demoRoomChannel(gateway) as never);
  for (const route of config.channels ?? []) mount.channel(route.pattern, route.handler);
  await config.setup?.(gateway);
  const address = await gateway.listen(options.port ?? config.port ?? 4000, options.host ?? config.host ?? '127.0.0.1');
  return { gateway, address };
}
