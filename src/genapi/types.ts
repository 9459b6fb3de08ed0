/**
 * The gateway side of the gen_api data model: function configs in their resolved form and live
 * service instances. The wire forms (FunConfig, ArgSpec, requests and responses) are the contract
 * with workers and live in src/nats/fun-config.ts; they are re-exported here for the gateway.
 */

import type { ArgType, FunConfig, ResponseType } from '../nats/fun-config.js';

export {
  ARG_TYPES,
  type ArgSpec,
  type ArgSpecObject,
  type ArgType,
  type CheckPermission,
  type ChooseNodeMode,
  type FunConfig,
  type GenApiRequest,
  type GenApiResponse,
  type ResponseType,
  type RetryConfig,
} from '../nats/fun-config.js';

/** A parsed argument rule. `defaultValue` undefined = no default. */
export interface ArgRule {
  /** The argument name. */
  readonly name: string;
  /** The argument type. */
  readonly type: ArgType;
  /** Accepts null. */
  readonly allowNil: boolean;
  /** Used when the client omits it. */
  readonly defaultValue: unknown;
  /** True when the spec carried parameters (max_*, required, accept): they replace the global limits. */
  readonly hasParams: boolean;
  /** Largest string in bytes. */
  readonly maxBytes?: number;
  /** Most items of a list or map. */
  readonly maxItems?: number;
  /** list_string: largest item in bytes. */
  readonly maxItemBytes?: number;
  /** map: keys that must be present. */
  readonly required: readonly string[];
  /** map: the only keys accepted (empty: any). */
  readonly accept: readonly string[];
}

/** A resolved `choose_node_mode`. */
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

/** A resolved `check_permission`. */
export type PermissionMode =
  | { readonly kind: 'none' }
  | { readonly kind: 'any_authenticated' }
  | { readonly kind: 'arg'; readonly arg: string }
  | { readonly kind: 'role'; readonly roles: readonly string[] };

/** A resolved `retry`: attempts on the same instance or over all instances, or null. */
export type RetryMode = {
  readonly kind: 'same_node' | 'all_nodes';
  readonly attempts: number;
} | null;

/** A validated config with defaults applied, as the executor uses it. */
export interface ResolvedFunConfig {
  /** The service. */
  readonly service: string;
  /** The function. */
  readonly requestType: string;
  /** null when unversioned. */
  readonly version: string | null;
  /** Where it runs: in-process or on NATS workers. */
  readonly nodes: 'local' | 'nats';
  /** How an instance is chosen. */
  readonly nodeMode: NodeMode;
  /** Per-attempt timeout in ms ("infinity" → 25 000). */
  readonly timeoutMs: number;
  /** null: no declared args (client args are passed through unchecked). */
  readonly args: readonly ArgRule[] | null;
  /** `arg_orders: "map"`: permission `{arg}` also looks one level deep into map arguments. */
  readonly argsAsMap: boolean;
  /** How it answers. */
  readonly responseType: ResponseType;
  /** The built-in permission check. */
  readonly permission: PermissionMode;
  /** The worker's permission endpoint is asked first. */
  readonly permissionCallback: boolean;
  /** FunConfig `request_info` (compatibility only). */
  readonly requestInfo: boolean;
  /** Hidden from clients. */
  readonly disabled: boolean;
  /** Retries, or null. */
  readonly retry: RetryMode;
  /** What is retried: transport failures or any error. */
  readonly retryOn: 'transport' | 'any';
  /** The before hook's name, or null. */
  readonly beforeExecute: string | null;
  /** The after hook's name, or null. */
  readonly afterExecute: string | null;
  /** Milliseconds per hook call. */
  readonly hookTimeoutMs: number;
  /** The wire form it came from (normalised: service enforced, version normalised). */
  readonly source: FunConfig;
}

/** One live worker instance of a service (a NATS micro service instance, or the local process). */
export interface ServiceInstance {
  /** The NATS micro instance id ("local" in-process). */
  readonly id: string;
  /** The service it serves. */
  readonly service: string;
  /** The instance's service (deployment) version: what `weighted` mode weighs. */
  readonly version: string;
}
