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

/**
 * Every code a GatewayError can carry. Public codes (thrown to a gateway embedder or a worker)
 * are documented in protocol/errors.md; internal codes are documented here and never surface
 * through a public API (they are caught and turned into wire answers, log lines or exit codes).
 */
export type GatewayErrorCode =
  // ---- public (protocol/errors.md) ----
  /** InvalidArgumentError: a call got an argument of the wrong type or shape. */
  | 'ERR_INVALID_ARGUMENT'
  /** OutOfRangeError: a numeric argument or option outside its range. */
  | 'ERR_OUT_OF_RANGE'
  /** InvalidStateError: a call not valid now (already listening, connected, tracked…). */
  | 'ERR_INVALID_STATE'
  /** OptionError: a gateway or socket option with a wrong type or value. */
  | 'ERR_OPTION'
  /** ConfigError: a config file that cannot be read, parsed or validated. */
  | 'ERR_CONFIG'
  /** PolicyError: an invalid rate-limit policy or rateLimits option. */
  | 'ERR_POLICY'
  /** ServiceError: a worker function failed on purpose (its status says how). */
  | 'ERR_SERVICE'
  /** StreamClosedError: a write to a stream that ended or was cancelled. */
  | 'ERR_STREAM_CLOSED'
  /** CancelledError: why a worker call's signal aborted (deadline, cancel, stop, lost link). */
  | 'ERR_CANCELLED'
  /** BroadcastTooLargeError: a worker's broadcast or disconnect over the server's max_payload. */
  | 'ERR_BROADCAST_TOO_LARGE'
  /** ChannelBroadcastTooLargeError: a channel's broadcast over the socket's maxBroadcastBytes. */
  | 'ERR_CHANNEL_BROADCAST_TOO_LARGE'
  /** PresenceRequestError: a worker's presence request timed out, failed or got a bad answer. */
  | 'ERR_PRESENCE_REQUEST'
  /** NoGatewayError: a worker's presence request found no gateway on its NATS. */
  | 'ERR_NO_GATEWAY'
  /** NatsConnectError: a NATS connection refused (auth, TLS, credentials file) or not made. */
  | 'ERR_NATS_CONNECT'
  /** WorkerClosedError: a served worker service ended without a drain (its NATS connection closed). */
  | 'ERR_WORKER_CLOSED'
  // ---- internal ----
  /** CliError: bad command-line arguments (the CLI prints the message and exits 2). */
  | 'ERR_CLI'
  /** NeverSatisfiableError: a rate-limit cost above the limit (policies are checked first). */
  | 'ERR_NEVER_SATISFIABLE'
  /** QueryDecodeError: a handshake query string that does not decode (answered 400). */
  | 'ERR_QUERY_DECODE'
  /** FrameDecodeError: a client frame that does not decode (the socket closes, 1011). */
  | 'ERR_FRAME_DECODE'
  /** FrameEncodeError: a server frame that cannot be encoded (dropped and counted). */
  | 'ERR_FRAME_ENCODE'
  /** ArgumentError: gen_api call arguments that do not convert (the client gets the message). */
  | 'ERR_GENAPI_ARGUMENT'
  /** EtfDecodeError: a Phoenix token payload outside the decoded ETF subset or its limits. */
  | 'ERR_ETF_DECODE'
  /** JwksUnavailable: a JWKS that could not be fetched (the connect is refused, `unavailable`). */
  | 'ERR_JWKS_UNAVAILABLE'
  /** HookTimeoutError: a gen_api before/after hook that ran out of time. */
  | 'ERR_HOOK_TIMEOUT'
  /** TransportFailureError: a failed NATS call inside the retry/breaker pipeline. */
  | 'ERR_TRANSPORT'
  /** RequestFailure: a NATS request without a usable answer (timeout, no responders, …). */
  | 'ERR_REQUEST_FAILED'
  /** PayloadTooLargeError: a request over the NATS server's max_payload (client: 413 message). */
  | 'ERR_PAYLOAD_TOO_LARGE'
  /** StoreError: the strict rate-limit store failed; the policy's fallback decides. */
  | 'ERR_STORE'
  /** TimeoutSignal (strict store): an operation ran out of time; becomes a StoreError. */
  | 'ERR_STORE_TIMEOUT'
  /** HttpError (admin API): ends an admin request with its HTTP status. */
  | 'ERR_HTTP'
  /** DecodeError: a gen_api request payload that does not decode (clients see `Invalid request: …`). */
  | 'ERR_GENAPI_DECODE';

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

/**
 * An option with a wrong type or value; the message names the option. Still a TypeError: callers
 * of createGateway have always been able to catch bad options as one. Declared here, at the
 * bottom, so that every layer (http/ as much as config/) can throw it.
 */
export class OptionError extends GatewayTypeError {
  override readonly name = 'OptionError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_OPTION', message, options);
  }
}

/** A call that is not valid in the object's current state (already listening, already tracked…). */
export class InvalidStateError extends GatewayError {
  override readonly name = 'InvalidStateError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_INVALID_STATE', message, options);
  }
}

/**
 * The reason a worker call's `signal` aborts: the deadline passed, the client cancelled the
 * stream, the worker is stopping, or its NATS connection was lost (the message says which). A
 * handler that calls `signal.throwIfAborted()` throws it.
 */
export class CancelledError extends GatewayError {
  override readonly name = 'CancelledError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_CANCELLED', message, options);
  }
}
