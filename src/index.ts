/**
 * gen-gateway: a Phoenix-channels-compatible realtime gateway.
 * See README.md for the channel API and protocol/phoenix.md for the wire contract.
 */
export { Gateway, createGateway, type GatewayOptions } from './gateway.js';
export { SocketMount } from './socket/mount.js';
export type { GatewayStats } from './socket/stats.js';
export {
  defineChannel,
  ok,
  error,
  reply,
  stop,
  type Assigns,
  type Channel,
  type ChannelHandler,
  type HandleInResult,
  type HandleOutResult,
  type JoinResult,
  type MaybePromise,
  type PeerAddress,
  type Reply,
  type ReplyRef,
  type SocketInfo,
  type Stop,
  type StopReason,
  type TerminateReason,
  type TransportName,
} from './channel/types.js';
export type { PubSub, Subscriber } from './channel/pubsub.js';
export {
  refuse,
  type ConnectHook,
  type ConnectInfo,
  type ConnectAccept,
  type ConnectRefusal,
  type ConnectResult,
} from './socket/connect.js';
export {
  SOCKET_DEFAULTS,
  type SocketOptions,
  type WebSocketOptions,
  type LongPollOptions,
} from './config/socket-options.js';
export type { CheckOrigin } from './http/check-origin.js';
export { OptionError, ConfigError } from './config/errors.js';
export type { Params, ParamValue } from './http/query.js';
export {
  type Presence,
  LocalPresence,
  type PresenceChange,
  type PresenceDiff,
  type PresenceMeta,
  type PresenceOptions,
  type PresenceState,
} from './presence/presence.js';
export { CLOSE } from './socket/session.js';
export type { Ref } from './wire/message.js';
export { createLogger, type Logger, type LoggerOptions } from './log/logger.js';
export { GenApi, createGenApi, type GenApiOptions, type GenApiHealth } from './genapi/gen-api.js';
export {
  GEN_API_DEFAULTS,
  identityFromAssigns,
  type GenApiChannelOptions,
} from './genapi/channel.js';
export type { Identity } from './genapi/request.js';
export type { BeforeHook, AfterHook, Hook, BeforeHookResult } from './genapi/hooks.js';
export type { RateLimitGate, RateDecision, ExecutorStats } from './genapi/executor.js';
export type {
  FunConfig,
  ResolvedFunConfig,
  GenApiRequest,
  GenApiResponse,
  ServiceInstance,
  ArgSpec,
  ArgType,
  ResponseType,
  ChooseNodeMode,
} from './genapi/types.js';
export type { NatsGatewayOptions, NatsHealth } from './bus/nats/link.js';
export { RESILIENCE_DEFAULTS, type ResilienceOptions } from './genapi/resilience.js';
