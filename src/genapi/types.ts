/**
 * The gen_api data model: function configs as workers publish them (snake_case JSON, the wire
 * form of PhoenixGenApi's FunConfig), their resolved gateway-side form, requests and responses.
 * The wire contract is protocol/gen_api.md and protocol/schemas/.
 */

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

export type ResponseType = 'sync' | 'async' | 'stream' | 'none';

/** How an instance is chosen among the live instances of a service. */
export type ChooseNodeMode =
  | 'random'
  | 'hash'
  | 'round_robin'
  | { hash: string }
  | { sticky: string; ttl_ms?: number }
  | { weighted: Record<string, number> };

export type CheckPermission = false | 'any_authenticated' | { arg: string } | { role: string[] };

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

/** A parsed argument rule. `defaultValue` undefined = no default. */
export interface ArgRule {
  readonly name: string;
  readonly type: ArgType;
  readonly allowNil: boolean;
  readonly defaultValue: unknown;
  /** True when the spec carried parameters (max_*, required, accept): they replace the global limits. */
  readonly hasParams: boolean;
  readonly maxBytes?: number;
  readonly maxItems?: number;
  readonly maxItemBytes?: number;
  readonly required: readonly string[];
  readonly accept: readonly string[];
}

export type NodeMode =
  | { readonly kind: 'random' }
  | { readonly kind: 'hash' }
  | { readonly kind: 'hash_arg'; readonly key: string }
  | { readonly kind: 'round_robin' }
  | { readonly kind: 'sticky'; readonly key: string; readonly ttlMs: number }
  | {
      readonly kind: 'weighted';
      readonly weights: ReadonlyMap<string, number>;
      readonly defaultWeight: number;
    };

export type PermissionMode =
  | { readonly kind: 'none' }
  | { readonly kind: 'any_authenticated' }
  | { readonly kind: 'arg'; readonly arg: string }
  | { readonly kind: 'role'; readonly roles: readonly string[] };

export type RetryMode = {
  readonly kind: 'same_node' | 'all_nodes';
  readonly attempts: number;
} | null;

/** A validated config with defaults applied, as the executor uses it. */
export interface ResolvedFunConfig {
  readonly service: string;
  readonly requestType: string;
  /** null when unversioned. */
  readonly version: string | null;
  readonly nodes: 'local' | 'nats';
  readonly nodeMode: NodeMode;
  /** Per-attempt timeout in ms ("infinity" → 25 000). */
  readonly timeoutMs: number;
  /** null: no declared args (client args are passed through unchecked). */
  readonly args: readonly ArgRule[] | null;
  /** `arg_orders: "map"`: permission `{arg}` also looks one level deep into map arguments. */
  readonly argsAsMap: boolean;
  readonly responseType: ResponseType;
  readonly permission: PermissionMode;
  readonly permissionCallback: boolean;
  readonly requestInfo: boolean;
  readonly disabled: boolean;
  readonly retry: RetryMode;
  readonly retryOn: 'transport' | 'any';
  readonly beforeExecute: string | null;
  readonly afterExecute: string | null;
  readonly hookTimeoutMs: number;
  /** The wire form it came from (normalised: service enforced, version normalised). */
  readonly source: FunConfig;
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

/** One live worker instance of a service (a NATS micro service instance, or the local process). */
export interface ServiceInstance {
  readonly id: string;
  readonly service: string;
  /** The instance's service (deployment) version: what `weighted` mode weighs. */
  readonly version: string;
}
