/**
 * Dispatch of a `stream` request: admitted through the bulkhead (whose slot it holds for its
 * whole life) and the service breaker, then `init` + reply, then the start Response, chunks and
 * end, relayed by a RelayedStream.
 */
import type { StreamStart } from '../../bus/types.js';
import { DEFAULT_STREAM_CREDIT } from '../../nats/headers.js';
import { BulkheadRejectedError } from '../resilience.js';
import { errorResponse, ERRORS, streamResponse } from '../response.js';
import { admission } from './call-policy.js';
import type { PipelineContext } from './context.js';
import { afterHook, answerEarly } from './hook-steps.js';
import { responseOf, resultResponse } from './outcome.js';
import { RelayedStream } from './relayed-stream.js';
import type { Dispatch } from './types.js';

/**
 * Relays a stream. Refused before it runs (bulkhead full, breaker open), the error is the first
 * and only push, as for async. A stream that waits in the bulkhead's queue is accepted (init) and
 * starts when a slot frees.
 */
export async function relayStream(
  ctx: PipelineContext,
  dispatch: Dispatch,
  args: Record<string, unknown>,
): Promise<void> {
  const { config, request, requestId, sink } = dispatch;
  if (sink.signal.aborted) {
    sink.reply('ok', request.request_type);
    return;
  }
  const credit = ctx.options.streamCredit ?? DEFAULT_STREAM_CREDIT;
  const relay = new RelayedStream(
    ctx,
    requestId,
    request.request_id,
    sink,
    credit,
    config.timeoutMs,
  );
  const policy = ctx.policy;
  const { queued, slot, refused } = policy.streamSlot(config.service, relay.finished);

  if (queued) {
    await acceptStream(ctx, dispatch, relay);
    await Promise.race([slot, relay.finished]);
    if (relay.done) return;
    streamStarted(ctx, dispatch, relay, await policy.start(dispatch, args, relay, credit));
    return;
  }
  const gate = await Promise.race([slot, refused]);
  if (gate !== 'slot') {
    relay.stop(null);
    if (!(gate instanceof BulkheadRejectedError)) throw gate;
    await answerEarly(
      ctx,
      request,
      config,
      requestId,
      sink,
      errorResponse(requestId, ERRORS.unavailable, true),
    );
    return;
  }
  const { admitted, result } = await admission((admit) =>
    policy.start(dispatch, args, relay, credit, admit),
  );
  if (!admitted) {
    relay.stop(null);
    await answerEarly(
      ctx,
      request,
      config,
      requestId,
      sink,
      responseOf(ctx, (await result).outcome, requestId, config, sink.trace),
    );
    return;
  }
  await acceptStream(ctx, dispatch, relay);
  streamStarted(ctx, dispatch, relay, await result);
}

/** The `init` push and the reply; from then on the client can cancel the stream by request_id. */
async function acceptStream(
  ctx: PipelineContext,
  { config, request, requestId, sink }: Dispatch,
  relay: RelayedStream,
): Promise<void> {
  sink.push(await afterHook(ctx, request, config, streamResponse(requestId, 'init')));
  sink.reply('ok', request.request_type);
  if (relay.done) return;
  ctx.streams.add(relay);
}

/** After the start: the nested start Response and live relaying, or the start's error. */
function streamStarted(
  ctx: PipelineContext,
  { config, requestId, sink }: Dispatch,
  relay: RelayedStream,
  start: StreamStart,
): void {
  if (relay.done) {
    start.control?.cancel();
    return;
  }
  if (!start.outcome.ok || !start.control) {
    relay.stop(null);
    const { outcome } = start;
    const timedOut = !outcome.ok && outcome.kind === 'transport' && outcome.reason === 'timeout';
    sink.push(
      timedOut
        ? errorResponse(requestId, ERRORS.streamTimeout)
        : responseOf(ctx, outcome, requestId, config, sink.trace),
    );
    return;
  }
  // PhoenixGenApi's first stream message nests the start call's whole Response.
  sink.push(streamResponse(requestId, resultResponse(requestId, start.outcome.result)));
  relay.live(start.control);
}
