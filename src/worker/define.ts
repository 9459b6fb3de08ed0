import { createHash } from 'node:crypto';
import type {
  ArgSpec,
  ArgType,
  ChooseNodeMode,
  FunConfig,
  ResponseType,
} from '../nats/fun-config.js';
import { FUN_CONFIG_DEFAULTS } from '../nats/fun-config.js';
import type { RequestContext } from './context.js';
import { GatewayError, InvalidArgumentError } from '../errors.js';

/** The TypeScript type a handler receives for an argument type. */
export type ArgValue<T extends ArgType> = T extends
  'string' | 'uuid' | 'datetime' | 'naive_datetime'
  ? string
  : T extends 'num'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'map'
        ? Record<string, unknown>
        : T extends 'list'
          ? (string | number | boolean)[]
          : T extends 'list_string' | 'list_uuid'
            ? string[]
            : T extends 'list_num'
              ? number[]
              : T extends 'list_map'
                ? Record<string, unknown>[]
                : unknown;

/** The argument type an `ArgSpec` declares (`"num"`, `["string", 100]` or `{ type: "uuid" }`). */
export type ArgSpecType<S> = S extends ArgType
  ? S
  : S extends readonly [infer T, number]
    ? T
    : S extends { type: infer T }
      ? T
      : never;
/** `null` when the spec allows nil (`allow_nil: true`), else `never`. */
export type NullableArg<S> = S extends { allow_nil: true } | { 'allow_nil?': true } ? null : never;

/** Handler arguments inferred from an `args` spec. */
export type ArgsOf<A extends Record<string, ArgSpec>> = {
  -readonly [K in keyof A]: ArgValue<ArgSpecType<A[K]> & ArgType> | NullableArg<A[K]>;
};

/** Who may call a function (FunConfig `check_permission`): the gateway checks it before the call. */
export type PermissionOption =
  false | 'any_authenticated' | { arg: string } | { role: readonly string[] };
/** Retries on transport failures: n attempts, on the same instance, or over all instances. */
export type RetryOption = number | { sameNode: number } | { allNodes: number };

/** A function of a service. The options mirror PhoenixGenApi's FunConfig (README: migration). */
export interface FunctionDefinition<A extends Record<string, ArgSpec> = Record<string, ArgSpec>> {
  /** Argument types (FunConfig `arg_types`). Omit to receive the client's args unchecked. */
  args?: A;
  /** FunConfig `response_type`. Default "sync". */
  response?: ResponseType;
  /** Per-attempt timeout in ms (100..300000) or "infinity". Default 5000. */
  timeout?: number | 'infinity';
  /** Function version clients may ask for; default unversioned. */
  version?: string;
  /** Built-in permission check, run by the gateway (FunConfig `check_permission`). */
  permission?: PermissionOption;
  /**
   * Custom permission check run by this worker before the gateway dispatches (FunConfig
   * `permission_callback`). It sees the client's arguments as sent (checked only after it allows).
   */
  authorize?(args: ArgsOf<A>, ctx: RequestContext): boolean | Promise<boolean>;
  /** Instance selection (FunConfig `choose_node_mode`). Default "random". */
  chooseNode?: ChooseNodeMode;
  /** Retries (FunConfig `retry`): a number means `{allNodes: n}`. */
  retry?: RetryOption;
  /** What is retried: transport failures (default) or any error. */
  retryOn?: 'transport' | 'any';
  /** Names of hooks registered on the gateway. */
  beforeExecute?: string;
  /** Name of the after hook registered on the gateway (FunConfig `after_execute`). */
  afterExecute?: string;
  /** Milliseconds per hook call (FunConfig `hook_timeout`). Default 5000. */
  hookTimeout?: number;
  /** Compatibility: PhoenixGenApi's `arg_orders` (arguments always travel by name here). */
  argOrders?: readonly string[] | 'map';
  /** Hides the function from clients (FunConfig `disabled`). */
  disabled?: boolean;
  /** Stream functions: the result of the stream's start message. Default "started". */
  startResult?: unknown;
  /** Runs the call: return the result (sync, async), or write to `ctx.stream` (stream). */
  handler(args: ArgsOf<A>, ctx: RequestContext): unknown;
}

/** A service: a name, a deployment version and its functions keyed by request type. */
export interface ServiceDefinition {
  /** The service name clients send as `service`. */
  readonly name: string;
  /** The deployment version (semver) reported to discovery; `weighted` mode routes by it. */
  readonly version: string;
  /** Reported to discovery. */
  readonly description: string;
  /** Identifies this set of function configs; gateways skip pushes with a version they have. */
  readonly configVersion: string;
  /** @internal The functions with their wire configs, keyed by request type and version. */
  readonly functions: ReadonlyMap<string, ResolvedFunction>;
}

/** A function with its wire config, keyed by `requestType` + version. */
export interface ResolvedFunction {
  readonly requestType: string;
  readonly version: string | null;
  readonly config: FunConfig;
  readonly definition: FunctionDefinition;
}

/** What `defineService` takes: the service's name, versions and functions. */
export interface ServiceOptions {
  /** The service name clients send as `service`. */
  name: string;
  /** The deployment version (semver) reported to discovery. Default "0.0.0". */
  version?: string;
  /** Reported to discovery. Default "". */
  description?: string;
  /** Default: a hash of the function configs, so changing a function changes it. */
  configVersion?: string;
  /** Keyed by request type; `"echo@2.0.0"` declares version 2.0.0 of `echo`. */
  functions: Record<string, FunctionDefinition>;
}

/**
 * Thrown by handlers to fail a request with a message and optionally an HTTP-like status (the
 * second argument; `code` is the stable GatewayError code ERR_SERVICE).
 */
export class ServiceError extends GatewayError {
  override readonly name = 'ServiceError';
  /** The status the gateway gets (Nats-Service-Error-Code): a 4xx but 404 shows the message. */
  readonly status: number;
  constructor(message: string, status = 500) {
    super('ERR_SERVICE', message);
    this.status = status;
  }
}

/** Gives a function definition its argument types: `fn({ args: { message: 'string' }, handler })`. */
export function fn<const A extends Record<string, ArgSpec>>(
  definition: FunctionDefinition<A>,
): FunctionDefinition<A> {
  return definition;
}

const TOKEN = /^[^\s.*>]+$/;

function retryToWire(retry: RetryOption | undefined): FunConfig['retry'] {
  if (retry === undefined) return null;
  if (typeof retry === 'number') return retry;
  return 'sameNode' in retry ? { same_node: retry.sameNode } : { all_nodes: retry.allNodes };
}

/** The wire FunConfig of a function (what the worker pushes to gateways). */
export function toFunConfig(
  service: string,
  requestType: string,
  definition: FunctionDefinition,
): FunConfig {
  const config: FunConfig = {
    service,
    request_type: requestType,
    version: definition.version ?? null,
    nodes: 'nats',
    response_type: definition.response ?? 'sync',
    timeout: definition.timeout ?? FUN_CONFIG_DEFAULTS.timeoutMs,
    arg_types: definition.args ?? null,
    check_permission:
      definition.permission === undefined
        ? false
        : (definition.permission as FunConfig['check_permission']),
    permission_callback: definition.authorize !== undefined,
    retry: retryToWire(definition.retry),
    retry_on: definition.retryOn ?? 'transport',
  };
  if (definition.chooseNode !== undefined) config.choose_node_mode = definition.chooseNode;
  if (definition.argOrders !== undefined)
    config.arg_orders = definition.argOrders === 'map' ? 'map' : [...definition.argOrders];
  if (definition.beforeExecute !== undefined) config.before_execute = definition.beforeExecute;
  if (definition.afterExecute !== undefined) config.after_execute = definition.afterExecute;
  if (definition.hookTimeout !== undefined) config.hook_timeout = definition.hookTimeout;
  if (definition.disabled !== undefined) config.disabled = definition.disabled;
  return config;
}

/** Defines a service. Checks names early so mistakes surface at start-up, not on first request. */
export function defineService(options: ServiceOptions): ServiceDefinition {
  if (!TOKEN.test(options.name))
    throw new InvalidArgumentError(
      `service name ${JSON.stringify(options.name)} must be a NATS subject token`,
    );
  const functions = new Map<string, ResolvedFunction>();
  for (const [key, definition] of Object.entries(options.functions)) {
    const at = key.indexOf('@');
    const requestType = at < 0 ? key : key.slice(0, at);
    const version = at < 0 ? (definition.version ?? null) : key.slice(at + 1);
    if (!TOKEN.test(requestType))
      throw new InvalidArgumentError(
        `request type ${JSON.stringify(requestType)} must be a NATS subject token`,
      );
    if (version !== null && !/^[0-9A-Za-z.+-]+$/.test(version))
      throw new InvalidArgumentError(
        `version ${JSON.stringify(version)} of ${requestType} is not a semver-like string`,
      );
    const def = { ...definition, ...(version === null ? {} : { version }) };
    if (typeof def.handler !== 'function')
      throw new InvalidArgumentError(`function ${key} needs a handler`);
    functions.set(functionKey(requestType, version), {
      requestType,
      version,
      config: toFunConfig(options.name, requestType, def),
      definition: def,
    });
  }
  const configs = [...functions.values()].map((f) => f.config);
  const configVersion =
    options.configVersion ??
    createHash('sha256').update(JSON.stringify(configs)).digest('hex').slice(0, 16);
  return {
    name: options.name,
    version: options.version ?? '0.0.0',
    description: options.description ?? '',
    configVersion,
    functions,
  };
}

export function functionKey(requestType: string, version: string | null): string {
  return version === null ? requestType : `${requestType}@${version}`;
}
