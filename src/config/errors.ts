import { GatewayError } from '../errors.js';

// OptionError lives with the error base (http/ throws it too, and imports nothing above it).
export { OptionError } from '../errors.js';

/** A config file that cannot be read, parsed or validated. */
export class ConfigError extends GatewayError {
  override readonly name = 'ConfigError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_CONFIG', message, options);
  }
}
