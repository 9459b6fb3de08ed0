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
  type: ArgType;
  allow_nil?: boolean;
  'allow_nil?'?: boolean;
  default_value?: unknown;
  max_bytes?: number;
  max_items?: number;
  max_item_bytes?: number;
  required?: string[];
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

/** A function config as workers publish it (JSON). Every field but service/request_type is optional. */
export interface FunConfig {
  service: string;
  request_type: string;
  /** null, "" and "0.0.0" mean "unversioned". */
  version?: string | null;
  /** Where it runs: "local" (in-process) or "nats" (the service's live instances). */
  nodes?: 'local' | 'nats';
  choose_node_mode?: ChooseNodeMode;
  /** Milliseconds, 100..300000, or "infinity" (25 000 ms per attempt). Default 5000. */
  timeout?: number | 'infinity';
  arg_types?: Record<string, ArgSpec> | null;
  /** Accepted for compatibility; arguments always travel by name. */
  arg_orders?: string[] | 'map' | null;
  response_type?: ResponseType;
  check_permission?: CheckPermission;
  /** true: ask the worker's permission endpoint (fail-closed). */
  permission_callback?: boolean | null;
  request_info?: boolean;
  disabled?: boolean;
  retry?: RetryConfig;
  /** Which failures are retried: "transport" (default: no responders, timeout, connection) or "any". */
  retry_on?: 'transport' | 'any';
  /** Names of hooks registered on the gateway. */
  before_execute?: string | null;
  after_execute?: string | null;
  hook_timeout?: number;
}

/** A decoded client request (PhoenixGenApi's Request), identity injected from the socket. */
export interface GenApiRequest {
  request_id: string;
  request_type: string;
  service: string;
  /** null: latest. */
  version: string | null;
  args: Record<string, unknown>;
  user_id: string | null;
  device_id: string | null;
  user_roles: string[] | null;
}

/** The 7-field Response pushed to clients on the gen_api event. */
export interface GenApiResponse {
  request_id: unknown;
  result: unknown;
  success: boolean;
  error: unknown;
  async: boolean;
  has_more: boolean;
  can_retry: boolean;
  /** Only on rate-limited responses: which limit and when to retry (protocol/gen_api.md §2). */
  rate_limit?: object;
}
