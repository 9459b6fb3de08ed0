/**
 * NATS headers of the gen_api protocol (protocol/nats.md §Headers). Request metadata travels in
 * headers so the body is exactly the (validated) arguments object.
 */
export const H = {
  requestId: 'Genapi-Request-Id',
  service: 'Genapi-Service',
  requestType: 'Genapi-Request-Type',
  version: 'Genapi-Version',
  userId: 'Genapi-User-Id',
  deviceId: 'Genapi-Device-Id',
  /** JSON array of strings. */
  roles: 'Genapi-Roles',
  responseType: 'Genapi-Response-Type',
  /** Absolute deadline, epoch milliseconds. */
  deadline: 'Genapi-Deadline',
  /** The same deadline relative to sending, in ms (for workers whose clock is off). */
  timeout: 'Genapi-Timeout',
  gateway: 'Genapi-Gateway',
  /** Stream requests: where chunks go, the stream's id, and the initial credit. */
  streamSubject: 'Genapi-Stream-Subject',
  streamId: 'Genapi-Stream-Id',
  streamCredit: 'Genapi-Stream-Credit',
  /** Stream start reply: where the gateway sends credit and cancel. */
  streamControl: 'Genapi-Stream-Control',
  /** Stream data messages: chunk | last | end | error, and a sequence number from 1. */
  streamEvent: 'Genapi-Stream-Event',
  streamSeq: 'Genapi-Stream-Seq',
  /** Control messages (gateway → worker): credit | cancel. */
  control: 'Genapi-Control',
  /** Config pushes: "true" replaces even when the config version matches. */
  force: 'Genapi-Force',
  /** Binary broadcasts on `<p>.topic.<token>`: the event (the body is the raw payload bytes). */
  broadcastEvent: 'Genapi-Event',
  /** NATS micro standard error headers. */
  serviceError: 'Nats-Service-Error',
  serviceErrorCode: 'Nats-Service-Error-Code',
} as const;

/** Error codes a worker replies with in Nats-Service-Error-Code. */
export const ERROR_CODES = {
  /** The handler failed (business error). */
  failed: 500,
  /** Bad arguments, rejected by the worker itself. */
  badRequest: 400,
  /** Denied by the worker. */
  forbidden: 403,
  /** Unknown function on this instance. */
  notFound: 404,
  /** The instance is draining or overloaded: another instance may take it (retryable). */
  unavailable: 503,
  /** The function ran out of its time: the gateway treats it as a timeout. */
  deadline: 504,
} as const;

/** The `metadata` every gen_api worker puts on its NATS micro service (discovery reads it). */
export const META = {
  protocol: 'genapi_protocol',
  prefix: 'genapi_prefix',
  configVersion: 'genapi_config_version',
} as const;

export const PROTOCOL_VERSION = '1';

/** Queue group of function, permission and config endpoints. */
export const QUEUE_GROUP = 'genapi';

/** Default initial stream credit (chunks a worker may send before the gateway grants more). */
export const DEFAULT_STREAM_CREDIT = 32;
