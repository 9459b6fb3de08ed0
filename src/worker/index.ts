/**
 * The gen-gateway worker SDK: define a service and its functions, then serve it over NATS
 * (`serve`) or run it inside a gateway (`genApi.register`). protocol/nats.md is the wire
 * contract for workers written in other languages.
 *
 * This file is the public API of `gen-gateway/worker`; api/gen-gateway-worker.api.md is its
 * report, checked by `npm run api`. It reaches src/worker, the wire contract (src/nats), src/util
 * and src/log only, never gateway internals (test/unit/layering.test.ts checks it).
 *
 * @packageDocumentation
 */
export {
  defineService,
  fn,
  ServiceError,
  toFunConfig,
  type ArgsOf,
  type ArgSpecType,
  type ArgValue,
  type FunctionDefinition,
  type NullableArg,
  type PermissionOption,
  type RetryOption,
  type ServiceDefinition,
  type ServiceOptions,
} from './define.js';
export type { RequestContext, RequestMeta } from './context.js';
export { TRACE_HEADERS, TRACE_LIMITS, type RequestTrace } from '../nats/trace-context.js';
export { WORKER_TRACER_NAME } from './trace.js';
export { SPAN_ATTRIBUTES } from '../nats/trace-otel.js';
export { StreamClosedError, type StreamWriter } from './stream.js';
export {
  CancelledError,
  GatewayError,
  GatewayTypeError,
  InvalidArgumentError,
  type GatewayErrorCode,
} from '../errors.js';
export { serve, SERVE_DEFAULTS, type RunningService, type ServeOptions } from './nats.js';
export { runWorker, RUN_WORKER_DEFAULTS, type RunWorkerOptions } from './run.js';
export {
  WorkerClosedError,
  type WorkerState,
  type WorkerStateChange,
  type WorkerStateListener,
} from './lifecycle.js';
export {
  WORKER_METRICS_DEFAULTS,
  type WorkerMetrics,
  type WorkerMetricsOptions,
} from './observer.js';
export {
  connectWorker,
  workerConnectOptionsFromEnv,
  WORKER_CONNECT_DEFAULTS,
  type WorkerConnectOptions,
} from './connect.js';
export {
  NatsConnectError,
  type NatsConnectFailure,
  type NatsCredentials,
  type NatsTlsOptions,
} from '../nats/connection.js';
export {
  BroadcastTooLargeError,
  createPublisher,
  NoGatewayError,
  PresenceRequestError,
  PUBLISHER_DEFAULTS,
  type Broadcaster,
  type PresenceFailure,
  type PresenceState,
  type Publisher,
  type PublisherOptions,
} from './pushes.js';
export type { PushAck, PushConfigMessage } from '../nats/messages.js';
export {
  ARG_TYPES,
  type ArgSpec,
  type ArgSpecObject,
  type ArgType,
  type CheckPermission,
  type ChooseNodeMode,
  type FunConfig,
  type ResponseType,
  type RetryConfig,
} from '../nats/fun-config.js';
export {
  defineAuthService,
  serveAuth,
  SERVE_AUTH_DEFAULTS,
  type AuthConnectContext,
  type AuthIdentity,
  type AuthJoinContext,
  type AuthServiceDefinition,
  type AuthServiceOptions,
  type RunningAuthService,
  type ServeAuthOptions,
} from './auth.js';
