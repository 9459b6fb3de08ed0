/**
 * The before and after hook steps, and the early answer that goes through the after hook. A
 * hook that fails or times out never fails the request: the before hook's failure rejects it, the
 * after hook's keeps the original Response.
 */
import { hookErrorMessage, isResponse, withHookTimeout } from '../hooks.js';
import type { GenApiRequest, GenApiResponse, ResolvedFunConfig } from '../types.js';
import type { PipelineContext } from './context.js';
import type { RequestSink } from './types.js';

/** The before hook's verdict: the (maybe rewritten) request and config, or a rejection. */
export type BeforeOutcome =
  { request: GenApiRequest; config: ResolvedFunConfig } | { reject: unknown };

/** Runs the before hook `name`: it may rewrite the request/config or reject. */
export async function beforeHook(
  ctx: PipelineContext,
  name: string,
  request: GenApiRequest,
  config: ResolvedFunConfig,
): Promise<BeforeOutcome> {
  const hook = ctx.options.hooks.get(name)?.before;
  if (!hook) return { request, config };
  try {
    const result = await withHookTimeout(() => hook(request, config), config.hookTimeoutMs);
    if (result && typeof result === 'object') {
      if ('reject' in result) return { reject: result.reject };
      return { request: result.request ?? request, config: result.config ?? config };
    }
    return { request, config };
  } catch (err) {
    const message = hookErrorMessage(err);
    ctx.logger.warn({ hook: name, err: message }, 'before hook failed');
    return { reject: message };
  }
}

/** Runs the after hook on a Response (or on nothing, for `none`): what it returns replaces it. */
export async function afterHook(
  ctx: PipelineContext,
  request: GenApiRequest,
  config: ResolvedFunConfig,
  response: GenApiResponse,
): Promise<GenApiResponse>;
export async function afterHook(
  ctx: PipelineContext,
  request: GenApiRequest,
  config: ResolvedFunConfig,
  response: null,
): Promise<null>;
export async function afterHook(
  ctx: PipelineContext,
  request: GenApiRequest,
  config: ResolvedFunConfig,
  response: GenApiResponse | null,
): Promise<GenApiResponse | null> {
  if (config.afterExecute === null) return response;
  const hook = ctx.options.hooks.get(config.afterExecute)?.after;
  if (!hook) return response;
  try {
    const replaced = await withHookTimeout(
      () => hook(request, config, response),
      config.hookTimeoutMs,
    );
    if (replaced === undefined || replaced === null) return response;
    if (isResponse(replaced)) return replaced;
    ctx.logger.warn(
      { hook: config.afterExecute },
      'after hook returned something other than a Response; kept the original',
    );
    return response;
  } catch (err) {
    ctx.logger.warn(
      { hook: config.afterExecute, err: hookErrorMessage(err) },
      'after hook failed; kept the original',
    );
    return response;
  }
}

/** Pushes an early error (after the after hook saw it) and replies ok, as PhoenixGenApi does. */
export async function answerEarly(
  ctx: PipelineContext,
  request: GenApiRequest,
  config: ResolvedFunConfig,
  requestId: unknown,
  sink: RequestSink,
  response: GenApiResponse,
): Promise<void> {
  sink.push(await afterHook(ctx, request, config, response));
  sink.reply('ok', request.request_type);
}
