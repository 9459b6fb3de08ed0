import type { GenApiRequest, GenApiResponse, ResolvedFunConfig } from './types.js';
import { GatewayError, InvalidArgumentError } from '../errors.js';
import { withDeadline } from '../util/deadline.js';

/**
 * A before hook may change the request or config, or reject the call. Returning anything else
 * (including nothing) proceeds unchanged, as in PhoenixGenApi.
 */
export type BeforeHookResult =
  | { readonly request?: GenApiRequest; readonly config?: ResolvedFunConfig }
  | { readonly reject: unknown }
  | void;
/** A before hook: may replace the request or config, or reject the request, before it runs. */
export type BeforeHook = (
  request: GenApiRequest,
  config: ResolvedFunConfig,
) => BeforeHookResult | Promise<BeforeHookResult>;

/**
 * An after hook sees the response about to be pushed (null for `none`; the ack for async and
 * stream) and may return a replacement Response. Anything that is not a Response keeps the
 * original (PhoenixGenApi crashed the request on such values).
 */
export type AfterHook = (
  request: GenApiRequest,
  config: ResolvedFunConfig,
  response: GenApiResponse | null,
) => GenApiResponse | null | void | Promise<GenApiResponse | null | void>;

/**
 * A named hook (`genApi.hook(name, hook)`) that function configs refer to in before_execute /
 * after_execute.
 */
export interface Hook {
  /** Runs before the call. */
  before?: BeforeHook;
  /** Runs on the response before it is pushed. */
  after?: AfterHook;
}

export class HookTimeoutError extends GatewayError {
  override readonly name = 'HookTimeoutError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_HOOK_TIMEOUT', message, options);
  }
}

/**
 * The message of whatever a hook threw: hooks may throw anything (`throw "nope"`, `throw null`),
 * and reading `.message` of a non-Error must not turn the hook's failure into another one.
 */
export function hookErrorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}

/** Runs `work` with a deadline; a throw or a timeout rejects. */
export function withHookTimeout<T>(work: () => T | Promise<T>, timeoutMs: number): Promise<T> {
  return withDeadline(Promise.resolve().then(work), timeoutMs, () => {
    throw new HookTimeoutError(`hook timed out after ${timeoutMs}ms`);
  });
}

const RESPONSE_KEYS = [
  'request_id',
  'result',
  'success',
  'error',
  'async',
  'has_more',
  'can_retry',
] as const;

export function isResponse(value: unknown): value is GenApiResponse {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return RESPONSE_KEYS.every((key) => key in record) && typeof record.success === 'boolean';
}

/** Hooks by name: FunConfigs refer to them in `before_execute` / `after_execute`. */
export class HookRegistry {
  private readonly hooks = new Map<string, Hook>();
  /** Live set of names: config validation sees hooks registered after it was set up. */
  readonly names: ReadonlySet<string> = new Set<string>();

  register(name: string, hook: Hook): void {
    if (!hook.before && !hook.after)
      throw new InvalidArgumentError(`hook ${name} needs a before or an after function`);
    this.hooks.set(name, hook);
    (this.names as Set<string>).add(name);
  }

  get(name: string): Hook | undefined {
    return this.hooks.get(name);
  }
}
