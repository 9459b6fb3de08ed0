import { GatewayError } from '../../errors.js';
/**
 * The one error class of argument validation and conversion (spec §3). PhoenixGenApi raises
 * ArgumentError, RuntimeError or InvalidType depending on the check; the gateway only needs the
 * message text (it is what clients receive), so every failure is an ArgumentError carrying the
 * PhoenixGenApi wording.
 */
export class ArgumentError extends GatewayError {
  override readonly name = 'ArgumentError';

  constructor(message: string) {
    super('ERR_GENAPI_ARGUMENT', message);
  }
}
