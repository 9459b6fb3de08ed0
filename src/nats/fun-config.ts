/**
 * The gen_api wire model shared by gateways and workers: function configs as workers publish them
 * (snake_case JSON, the wire form of PhoenixGenApi's FunConfig), argument specs, and the request
 * and response shapes. The contract is protocol/gen_api.md, protocol/nats.md and
 * protocol/schemas/. Nothing here depends on the gateway.
 */

/** Every argument type a function config may declare (PhoenixGenApi's argument types). */
export const ARG_TYPES = [
  'string',
  'num',
  'boolean',
  'uuid',
  'datetime',
  'naive_datetime',
  'map',
  'list',
  'list_string',
  'list_num',
  'list_uuid',
  'list_map',
  'any',
] as const;
/** One argument type: `"string"`, `"num"`, `"uuid"`, `"list_map"`, … (see {@link ARG_TYPES}). */
export type ArgType = (typeof ARG_TYPES)[number];

/** Extended argument spec (PhoenixGenApi's keyword form). `allow_nil?` is accepted as an alias. */
export interface ArgSpecObject {
  /** The argument type. */
  type: ArgType;
  /** Accept null (default false). */
  allow_nil?: boolean;
  /** Alias of `allow_nil` (PhoenixGenApi's keyword spelling). */
  'allow_nil?'?: boolean;
  /** Used when the client omits the argument. */
  default_value?: unknown;
  /** Largest string in bytes. */
  max_bytes?: number;
  /** Most items of a list or map. */
  max_items?: number;
  /** list_string: largest item in bytes. */
  max_item_bytes?: number;
  /** map: keys that must be present. */
  required?: string[];
  /** map: the only keys accepted (others are rejected). */
  accept?: string[];
}

/** `"string"`, the legacy tuple `["string", 100]`, or the extended object. */
export type ArgSpec = ArgType | readonly [ArgType, number] | ArgSpecObject;

/** How a function answers: one result, an ack then the result, a stream, or nothing. */
export type ResponseType = 'sync' | 'async' | 'stream' | 'none';

/** How an instance is chosen among the live instances of a service. */
export type ChooseNodeMode =
  | 'random'
  | 'hash'
  | 'round_robin'
  | { hash: string }
  | { sticky: string; ttl_ms?: number }
  | { weighted: Record<string, number> };

/** Who may call a function: anyone, any authenticated user, the user named by an argument, or roles. */
export type CheckPermission = false | 'any_authenticated' | { arg: string } | { role: string[] };

/** Retries of a failed attempt: none, n on any instance, or n on the same or on all instances. */
export type RetryConfig = null | number | { same_node: number } | { all_nodes: number };

/**
 * The defaults of the optional FunConfig fields (protocol/gen_api.md §3): what the gateway uses
 * when a worker's config leaves one out (`nodes` depends on how the function is registered).
 */
export const FUN_CONFIG_DEFAULTS = {
  /** `timeout` absent. */
  timeoutMs: 5000,
  /** `timeout: "infinity"`: per attempt. */
  infinityTimeoutMs: 25_000,
  /** `hook_timeout` absent. */
  hookTimeoutMs: 5000,
  /** `choose_node_mode: {"sticky": key}` without `ttl_ms`. */
  stickyTtlMs: 3_600_000,
  responseType: 'sync',
  retryOn: 'transport',
} as const;

/** A function config as workers publish it (JSON). Every field but service/request_type is optional. */
export interface FunConfig {
  /** The service the function belongs to. */
  service: string;
  /** The function name clients send as `request_type`. */
  request_type: string;
  /** null, "" and "0.0.0" mean "unversioned". */
  version?: string | null;
  /** Where it runs: "local" (in-process) or "nats" (the service's live instances). */
  nodes?: 'local' | 'nats';
  /** How an instance is chosen. Default "random". */
  choose_node_mode?: ChooseNodeMode;
  /** Milliseconds, 100..300000, or "infinity" (25 000 ms per attempt). Default 5000 (FUN_CONFIG_DEFAULTS). */
  timeout?: number | 'infinity';
  /** `{name: spec}`; null passes client args through unchecked, `{}` accepts none. */
  arg_types?: Record<string, ArgSpec> | null;
  /** Accepted for compatibility; arguments always travel by name. */
  arg_orders?: string[] | 'map' | null;
  /** Default "sync". */
  response_type?: ResponseType;
  /** Built-in permission check by the gateway. Default false. */
  check_permission?: CheckPermission;
  /** true: ask the worker's permission endpoint (fail-closed). */
  permission_callback?: boolean | null;
  /** Accepted for compatibility: request info always reaches workers. */
  request_info?: boolean;
  /** Hides the function (`disabled function` for an explicit version). */
  disabled?: boolean;
  /** Retries of transport failures (or any, with `retry_on`). Default null. */
  retry?: RetryConfig;
  /** Which failures are retried: "transport" (default: no responders, timeout, connection) or "any". */
  retry_on?: 'transport' | 'any';
  /** Names of hooks registered on the gateway. */
  before_execute?: string | null;
  /** Name of the after hook registered on the gateway. */
  after_execute?: string | null;
  /** Milliseconds per hook call. Default 5000. */
  hook_timeout?: number;
}

/** A decoded client request (PhoenixGenApi's Request), identity injected from the socket. */
export interface GenApiRequest {
  /** Chosen by the client; every response carries it. */
  request_id: string;
  /** The function. */
  request_type: string;
  /** The service. */
  service: string;
  /** null: latest. */
  version: string | null;
  /** Arguments by name. */
  args: Record<string, unknown>;
  /** From the socket's identity (the payload's only when not overridden). */
  user_id: string | null;
  /** From the socket's identity (the payload's only when not overridden). */
  device_id: string | null;
  /** From the socket's identity; null when it has none. */
  user_roles: string[] | null;
}

/** The 7-field Response pushed to clients on the gen_api event. */
export interface GenApiResponse {
  /** The request's `request_id`. */
  request_id: unknown;
  /** The result, a stream chunk, or null. */
  result: unknown;
  /** False on failure. */
  success: boolean;
  /** The error message on failure, else null. */
  error: unknown;
  /** True for the ack of an async request. */
  async: boolean;
  /** True while a stream has more to send. */
  has_more: boolean;
  /** True when retrying the same request may succeed. */
  can_retry: boolean;
  /** Only on rate-limited responses: which limit and when to retry (protocol/gen_api.md §2). */
  rate_limit?: object;
  /** Only when the request carried a trace context: its trace id (protocol/gen_api.md §Tracing). */
  trace_id?: string;
}
