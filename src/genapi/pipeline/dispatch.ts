/**
 * Steps 6 and 7, dispatch and after hook, for the response types that answer in more than one
 * push (async, none, stream): the call through the CallPolicy, its Responses through the after
 * hook, and the reply.
 */
import { traceLogFields } from '../../nats/trace-otel.js';
import { asyncResponse } from '../response.js';
import type { GenApiResponse } from '../types.js';
import { admission } from './call-policy.js';
import type { PipelineContext } from './context.js';
import { afterHook, answerEarly } from './hook-steps.js';
import { callResponse } from './outcome.js';
import { relayStream } from './stream.js';
import type { Dispatch } from './types.js';

/**
 * Runs an async, none or stream call; the sink gets its pushes and the reply. (A sync call, the
 * hot path, is dispatched in Executor.run itself, with no extra async frame.)
 */
export async function dispatchCall(
  ctx: PipelineContext,
  dispatch: Dispatch,
  args: Record<string, unknown>,
  responseType: 'async' | 'none' | 'stream',
): Promise<void> {
  if (responseType === 'stream') {
    await relayStream(ctx, dispatch, args);
    return;
  }
  const { config, request, requestId, sink } = dispatch;
  // PhoenixGenApi: a call refused before it runs (bulkhead full, breaker open) gets the error as
  // its first and only push.
  const { admitted, result } = await admission((admit) => ctx.policy.call(dispatch, args, admit));
  if (!admitted) {
    const refusal = callResponse(ctx, await result, dispatch);
    await answerEarly(ctx, request, config, requestId, sink, refusal);
    return;
  }
  if (responseType === 'async') {
    // An admitted async call gets the ack, then its result.
    sink.push(await afterHook(ctx, request, config, asyncResponse(requestId)));
    sink.reply('ok', request.request_type);
    sink.push(callResponse(ctx, await result, dispatch));
    return;
  }
  await afterHook(ctx, request, config, null);
  sink.reply('ok', request.request_type);
  dropped(ctx, dispatch, callResponse(ctx, await result, dispatch));
}

/**
 * The outcome of a `none` call, whose result nobody waits for (protocol/gen_api.md §7.22):
 * when nothing ran (no worker answered, every instance refused, NATS down) the client is told
 * with `Service temporarily unavailable` (can_retry), since sending it again is safe; a failure
 * after a worker took the call (function error, timeout, instance lost) is only logged — it may
 * have run, and PhoenixGenApi drops `none` results.
 */
function dropped(
  ctx: PipelineContext,
  { config, requestId, sink }: Dispatch,
  response: GenApiResponse,
): void {
  if (response.success) return;
  const fields = {
    requestId,
    service: config.service,
    requestType: config.requestType,
    error: response.error,
    ...traceLogFields(sink.trace),
  };
  if (response.can_retry) {
    ctx.logger.warn(fields, 'fire-and-forget call not delivered');
    sink.push(response);
  } else {
    ctx.logger.warn(fields, 'fire-and-forget call failed');
  }
}
