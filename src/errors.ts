/**
 * The common base of every error gen-gateway throws, and its stable codes.
 *
 * This module imports nothing, so both the gateway and the worker SDK (`gen-gateway/worker`) can
 * build on it without the worker depending on gateway internals.
 *
 * Test an error with `err instanceof GatewayError` and branch on `err.code`; the codes never
 * change meaning (messages may be reworded, codes are not). Codes a gateway embedder or a worker
 * can observe are documented in protocol/errors.md; the ones marked "internal" below never leave
 * the process.
 */

/** Every code a GatewayError can carry. */
export type GatewayErrorCode =
  // Programming-interface misuse (thrown synchronously by the call that was misused).
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_INVALID_STATE'
  // Gateway options and config.
  | 'ERR_OPTION'
  | 'ERR_CONFIG'
  | 'ERR_POLICY'
  | 'ERR_NEVER_SATISFIABLE'
  | 'ERR_CLI'
  // Wire input and output.
  | 'ERR_QUERY_DECODE'
  | 'ERR_FRAME_DECODE'
  | 'ERR_FRAME_ENCODE'
  // gen_api calls.
  | 'ERR_GENAPI_ARGUMENT'
  | 'ERR_HOOK_TIMEOUT'
  | 'ERR_TRANSPORT'
  | 'ERR_REQUEST_FAILED'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_STORE'
  // Worker SDK.
  | 'ERR_SERVICE'
  | 'ERR_STREAM_CLOSED'
  // Internal: never leave the process (admin API control flow, strict store deadlines).
  | 'ERR_HTTP'
  | 'ERR_STORE_TIMEOUT'
  // Internal: DecodeError's reasons. They predate this scheme and keep PhoenixGenApi's spelling
  // because DecodeError.code already carried them; clients see only the message.
  | 'invalid_payload'
  | 'missing_field';

/**
 * Marks every gen-gateway error, whichever built-in class it extends: a few errors stay
 * TypeError or RangeError because callers rely on that (e.g. OptionError), and still answer
 * `instanceof GatewayError`. Symbol.for so that two loaded copies of the package agree.
 */
const BRAND = Symbol.for('gen-gateway.GatewayError');

function hasBrand(value: unknown): boolean {
  return typeof value === 'object' && value !== null && BRAND in value;
}

function isInstance(ctor: { prototype: unknown }, value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.prototype.isPrototypeOf.call(ctor.prototype, value)
  );
}

/** The base of every error gen-gateway throws. */
export class GatewayError extends Error {
  /** True for every gen-gateway error, including those extending TypeError or RangeError. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return this === GatewayError ? hasBrand(value) : isInstance(this, value);
  }

  override readonly name: string = 'GatewayError';
  /** What failed, as a stable string (see GatewayErrorCode). */
  readonly code: GatewayErrorCode;

  constructor(code: GatewayErrorCode, message?: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** A GatewayError that is also a TypeError (for errors that were TypeErrors before the base). */
export class GatewayTypeError extends TypeError {
  override readonly name: string = 'GatewayTypeError';
  readonly code: GatewayErrorCode;

  constructor(code: GatewayErrorCode, message?: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** A GatewayError that is also a RangeError (for errors that were RangeErrors before the base). */
export class GatewayRangeError extends RangeError {
  override readonly name: string = 'GatewayRangeError';
  readonly code: GatewayErrorCode;

  constructor(code: GatewayErrorCode, message?: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

for (const ctor of [GatewayError, GatewayTypeError, GatewayRangeError])
  Object.defineProperty(ctor.prototype, BRAND, { value: true });

/**
 * An argument of a gen-gateway call has the wrong type or shape (a channel pattern, a header
 * name, a service definition, a route prefix). A TypeError, as such errors were before.
 */
export class InvalidArgumentError extends GatewayTypeError {
  override readonly name = 'InvalidArgumentError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_INVALID_ARGUMENT', message, options);
  }
}

/** A numeric argument or option outside its range. A RangeError, as such errors were before. */
export class OutOfRangeError extends GatewayRangeError {
  override readonly name = 'OutOfRangeError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_OUT_OF_RANGE', message, options);
  }
}

/** A call that is not valid in the object's current state (already listening, already tracked…). */
export class InvalidStateError extends GatewayError {
  override readonly name = 'InvalidStateError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_INVALID_STATE', message, options);
  }
}
