/**
 * gen-gateway: a Phoenix-channels-compatible realtime gateway.
 * See README.md for the channel API and protocol/phoenix.md for the wire contract.
 *
 * This file is the package's public API (`gen-gateway`); api/gen-gateway.api.md is its report,
 * checked by `npm run api`. Every type a public signature reaches is exported here; everything
 * else is internal (members tagged internal are stripped from the published declarations).
 *
 * @packageDocumentation
 */

// The gateway, its mounts and options.
export {
  Gateway,
  createGateway,
  type GatewayClusterHealth,
  type GatewayOptions,
  type HttpRoute,
} from './gateway.js';
export { GATEWAY_DEFAULTS } from './config/gateway-defaults.js';
export { SocketMount } from './socket/mount.js';
export type { GatewayStats } from './socket/stats.js';
export { Telemetry } from './telemetry/events.js';
export type {
  ChannelHandledInEvent,
  ChannelJoinedEvent,
  ChannelLeftEvent,
  GenApiOutcome,
  GenApiRequestEvent,
  SocketClosedEvent,
  SocketConnectedEvent,
  SocketDrainEvent,
  TelemetryEventName,
  TelemetryEvents,
  TelemetryHandler,
  TelemetryTransport,
} from './telemetry/events.js';
export type { Clock } from './util/clock.js';
export {
  gatewayMetrics,
  METRIC_PREFIX,
  type GatewayMetrics,
  type GatewayMetricsSources,
} from './metrics/gateway-metrics.js';
export {
  METRICS_DEFAULTS,
  type MetricsOptions,
  type OpsListenerOptions,
} from './metrics/options.js';
export { createLogger, type Logger, type LoggerOptions } from './log/logger.js';
export { CLOSE } from './socket/session.js';

// Channels.
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
export type { ProtocolVersion } from './wire/serializer.js';
export type { Ref } from './wire/message.js';

// Connecting.
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
  type InboundByteRateOptions,
  type LongPollOptions,
  type ConnectLimit,
  type ConnectLimitDecision,
  type JoinAuthorizer,
  type TokenRefresher,
} from './config/socket-options.js';
export type { AuthConfig } from './auth/config.js';
export type { AuthStats } from './auth/connect.js';
export type { AuthFailureReason } from './auth/types.js';
export type { JoinRule, JoinRulesOptions } from './auth/join-rules.js';
export type { PhoenixTokenOptions, PhoenixTokenKeys } from './auth/phoenix-token.js';
export type { JwtOptions, JwtClaimMapping, JwtClaimPath, JwtJwksOptions } from './auth/jwt.js';
export type { WorkerAuthOptions } from './auth/worker.js';
export type { MessageRateOptions } from './ratelimit/message-limit.js';
export type { CheckOrigin } from './http/check-origin.js';
export type { Params, ParamValue } from './http/query.js';

// Errors: every error the gateway throws is a GatewayError with a stable code (protocol/errors.md).
export {
  GatewayError,
  GatewayRangeError,
  GatewayTypeError,
  InvalidArgumentError,
  InvalidStateError,
  OptionError,
  OutOfRangeError,
  type GatewayErrorCode,
} from './errors.js';
export { ConfigError } from './config/errors.js';
export { ChannelBroadcastTooLargeError } from './channel/broadcast-size.js';

// Presence.
export type {
  Presence,
  PresenceChange,
  PresenceDiff,
  PresenceMeta,
  PresenceOptions,
  PresenceState,
  ClusterPresenceOptions,
} from './presence/presence.js';

// Cluster: broadcasts, Presence and disconnects across gateways on NATS.
export type { ClusterConnectionHealth, ClusterOptions } from './cluster/cluster.js';
export {
  NatsConnectError,
  type NatsConnectFailure,
  type NatsConnectionOptions,
  type NatsCredentials,
  type NatsTlsOptions,
} from './nats/connection.js';
export {
  CLUSTER_PUBSUB_DEFAULTS,
  type ClusterPubSubOptions,
  type ClusterPubSubStats,
} from './cluster/pubsub.js';
export type { ClusterDisconnectStats } from './cluster/disconnect.js';
export { CLUSTER_PRESENCE_DEFAULTS } from './cluster/presence-options.js';
export type { ClusterPresenceStats } from './cluster/presence.js';
export type { PresenceReplicaStats } from './cluster/presence-replica.js';

// gen_api.
export {
  GenApi,
  createGenApi,
  NATS_RETRY_DEFAULTS,
  type GenApiOptions,
  type GenApiHealth,
  type NatsRetryOptions,
  type NatsStart,
} from './genapi/gen-api.js';
export { DRAIN_DEFAULTS, type DrainOptions } from './lifecycle/drain.js';
export {
  GEN_API_DEFAULTS,
  identityFromAssigns,
  type GenApiChannelOptions,
} from './genapi/channel.js';
export type { Identity } from './genapi/request.js';
export type { BeforeHook, AfterHook, Hook, BeforeHookResult } from './genapi/hooks.js';
export type { RateLimitGate, RateContext, RateDecision, ExecutorStats } from './genapi/executor.js';
export type { ArgLimits } from './genapi/args/convert.js';
export {
  ARG_TYPES,
  type ArgSpec,
  FUN_CONFIG_DEFAULTS,
  type ArgSpecObject,
  type ArgType,
  type CheckPermission,
  type ChooseNodeMode,
  type FunConfig,
  type GenApiRequest,
  type GenApiResponse,
  type ResponseType,
  type RetryConfig,
} from './nats/fun-config.js';
export type {
  ArgRule,
  NodeMode,
  PermissionMode,
  ResolvedFunConfig,
  RetryMode,
  ServiceInstance,
} from './genapi/types.js';
export type { ServiceDefinition } from './worker/define.js';
export { TRACE_HEADERS, TRACE_LIMITS, type RequestTrace } from './nats/trace-context.js';
export { GATEWAY_TRACER_NAME } from './tracing/request-span.js';
export { SPAN_ATTRIBUTES } from './nats/trace-otel.js';
export { RESILIENCE_DEFAULTS, type ResilienceOptions } from './genapi/resilience.js';
export { RELAY_DEFAULTS, type RelayOptions, type RelayStats } from './genapi/relay.js';

// NATS.
export type { NatsGatewayOptions, NatsHealth, NatsStatus } from './bus/nats/link.js';
export type { DiscoveryOptions } from './bus/nats/discovery.js';
export type { ConfigSyncOptions, ConfigSyncStatus } from './bus/nats/config-sync.js';

// Rate limits.
export type {
  ConnectLimitOptions,
  PolicyView,
  RateLimitsHealth,
  RateLimitsOptions,
} from './ratelimit/rate-limits.js';
export { RATE_LIMITS_DEFAULTS } from './ratelimit/rate-limits-defaults.js';
export {
  ALGORITHMS,
  MODES,
  type AlgorithmName,
  type Fallback,
  type KeyDimension,
  type Mode,
  type PolicyConfig,
  type PolicyScope,
  type RateLimitStats,
} from './ratelimit/types.js';
export { PolicyError } from './ratelimit/policy.js';
export { POLICY_DEFAULTS } from './ratelimit/policy-config.js';
export type { LimitState } from './ratelimit/headers.js';
export type { ClusterHealth } from './ratelimit/cluster/index.js';
export type { EventualOptions, EventualStats } from './ratelimit/cluster/eventual.js';
export type { MembershipOptions } from './ratelimit/cluster/membership.js';
export type { StrictOptions, StrictStats } from './ratelimit/cluster/strict.js';
export type { PolicySyncStats } from './ratelimit/cluster/policy-sync.js';
