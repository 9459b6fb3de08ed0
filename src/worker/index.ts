/**
 * The gen-gateway worker SDK: define a service and its functions, then serve it over NATS
 * (`serve`) or run it inside a gateway (`genApi.register`). protocol/nats.md is the wire
 * contract for workers written in other languages.
 */
export {
  defineService,
  fn,
  ServiceError,
  toFunConfig,
  type ArgsOf,
  type ArgValue,
  type FunctionDefinition,
  type PermissionOption,
  type RetryOption,
  type ServiceDefinition,
  type ServiceOptions,
} from './define.js';
export type { RequestContext } from './context.js';
export { StreamClosedError, type StreamWriter } from './stream.js';
export { serve, SERVE_DEFAULTS, type RunningService, type ServeOptions } from './nats.js';
export type { PushAck, PushConfigMessage } from '../nats/messages.js';
export type {
  ArgSpec,
  ArgType,
  ChooseNodeMode,
  FunConfig,
  ResponseType,
} from '../nats/fun-config.js';
