/**
 * The defaults of `GatewayOptions` (and of the config file's `host`/`port`; README: Command line
 * and config file). In a module of its own so the command-line parser reads them without loading
 * the gateway.
 */
export const GATEWAY_DEFAULTS = { host: '127.0.0.1', port: 4000, timerTickMs: 250 } as const;
