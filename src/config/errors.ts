import { GatewayError, GatewayTypeError } from '../errors.js';

/**
 * An option with a wrong type or value; the message names the option. Still a TypeError: callers
 * of createGateway have always been able to catch bad options as one.
 */
export class OptionError extends GatewayTypeError {
  override readonly name = 'OptionError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_OPTION', message, options);
  }
}

/** A config file that cannot be read, parsed or validated. */
export class ConfigError extends GatewayError {
  override readonly name = 'ConfigError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_CONFIG', message, options);
  }
}
