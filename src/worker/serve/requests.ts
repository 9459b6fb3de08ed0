import type { Msg } from '@nats-io/nats-core';
import { ERROR_CODES, H } from '../../nats/headers.js';
import { readHeaders, type HeaderValues } from '../../nats/header-reader.js';
import { traceLogFields } from '../../nats/trace-otel.js';
import type { RequestMeta } from '../context.js';
import type { ResolvedFunction, ServiceDefinition } from '../define.js';
import { outcomeOf, type CallOutcome } from '../observer.js';
import { CallSignal, runAuthorize, runCall } from '../runtime.js';
import { startWorkerSpan } from '../trace.js';
import type { EndpointStats } from './endpoint-stats.js';
import { respondError } from './micro-service.js';
import type { InFlight } from './inflight.js';
import { json, replyHeaders, type ServeScope } from './scope.js';
import type { StreamServer } from './streams.js';

const decoder = new TextDecoder();

/** The call's metadata from the gateway's headers (protocol/nats.md §5). */
export function readMeta(
  h: HeaderValues,
  definition: ServiceDefinition,
  fn: ResolvedFunction,
): RequestMeta {
  const timeout = Number(h.get(H.timeout));
  const deadline = Number(h.get(H.deadline));
  let roles: string[] = [];
  const rolesHeader = h.get(H.roles);
  if (rolesHeader) {
    try {
      const parsed: unknown = JSON.parse(rolesHeader);
      if (Array.isArray(parsed))
        roles = parsed.filter((role): role is string => typeof role === 'string');
    } catch {
      roles = [];
    }
  }
  const fallback = typeof fn.config.timeout === 'number' ? fn.config.timeout : 25_000;
  return {
    requestId: h.get(H.requestId) || '',
    service: definition.name,
    requestType: fn.requestType,
    version: fn.version,
    userId: h.get(H.userId) || null,
    deviceId: h.get(H.deviceId) || null,
    roles,
    responseType: fn.config.response_type ?? 'sync',
    // Relative first: a worker whose clock is off still gets the time the gateway gives it.
    deadline:
      Date.now() +
      (timeout > 0 ? timeout : deadline > 0 ? Math.max(0, deadline - Date.now()) : fallback),
    gateway: h.get(H.gateway) || null,
  };
}

/** The call's arguments: a JSON object (an empty body is none), or null when it is not one. */
export function parseArgs(msg: Msg): Record<string, unknown> | null {
  if (msg.data.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(decoder.decode(msg.data));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/**
 * Answers function calls and permission checks: admits or refuses a call (503 when draining or
 * full), runs its handler and replies, accounting each reply on its endpoint's statistics when it
 * is sent. Stream starts go to the StreamServer once admitted.
 */
export class RequestHandler {
  constructor(
    private readonly scope: ServeScope,
    private readonly inflight: InFlight,
    private readonly streams: StreamServer,
  ) {}

  /** Refuses a call or stream start with 503 when draining or full: the gateway goes elsewhere. */
  private refused(msg: Msg, stats: EndpointStats, startedAt: number): boolean {
    const reason = this.inflight.refusal();
    if (reason === null) return false;
    this.scope.fail(msg, stats, startedAt, ERROR_CODES.unavailable, reason);
    return true;
  }

  /** A call (or a stream start) to `fn`. */
  call(fn: ResolvedFunction, msg: Msg, stats: EndpointStats): void {
    const { scope, inflight } = this;
    const { observer, pushes, logger } = scope;
    const startedAt = Date.now();
    if (this.refused(msg, stats, startedAt)) {
      observer?.refused(fn.requestType, 'refused');
      return;
    }
    const args = parseArgs(msg);
    if (args === null) {
      scope.fail(msg, stats, startedAt, ERROR_CODES.badRequest, 'arguments must be a JSON object');
      observer?.refused(fn.requestType, 'client_error');
      return;
    }
    const headers = readHeaders(msg);
    let meta = readMeta(headers, scope.definition, fn);
    const span = startWorkerSpan(headers, meta);
    if (span !== null) meta = { ...meta, trace: span.trace };
    if (fn.config.response_type === 'stream') {
      this.streams.start(fn, args, meta, headers, msg, stats, startedAt, span);
      return;
    }
    inflight.begin();
    observer?.started(fn.requestType, false);
    let outcome: CallOutcome = 'error';
    const call = new CallSignal(meta.deadline);
    inflight.calls.add(call);
    // No closure for untraced calls: this is the worker's hot path.
    (span === null
      ? runCall(fn, args, meta, call, pushes, logger)
      : span.run(() => runCall(fn, args, meta, call, pushes, logger))
    )
      .then((result) => {
        inflight.calls.delete(call);
        outcome = result.ok ? 'ok' : outcomeOf(result.code);
        const headers = span === null ? undefined : replyHeaders(span.replyHeaders());
        scope.send(() =>
          result.ok
            ? msg.respond(json(result.result), headers && { headers })
            : respondError(msg, result.code, result.error, headers),
        );
        span?.end(result.ok ? null : result.error);
        stats.replied(startedAt, result.ok ? null : result.error);
      })
      // runCall turns every handler failure into a result: this is a defect in replying or
      // accounting. The gateway times the call out; the slot is freed below either way.
      .catch((err: unknown) => {
        span?.end('call not answered');
        logger.error(
          { err, function: fn.requestType, ...traceLogFields(meta.trace) },
          'call not answered',
        );
      })
      .finally(() => {
        inflight.calls.delete(call);
        observer?.finished(fn.requestType, false, outcome, (Date.now() - startedAt) / 1000);
        inflight.end();
      });
  }

  /** A permission check of `fn`: answers true or false; never counted as in flight. */
  authorize(fn: ResolvedFunction, msg: Msg, stats: EndpointStats): void {
    const { scope } = this;
    const { observer, logger } = scope;
    const startedAt = Date.now();
    const args = parseArgs(msg);
    if (args === null) {
      scope.send(() => msg.respond(json(false)));
      stats.replied(startedAt, null);
      observer?.permission(fn.requestType, false);
      return;
    }
    runAuthorize(fn, args, readMeta(readHeaders(msg), scope.definition, fn), scope.pushes, logger)
      .then((allowed) => {
        scope.send(() => msg.respond(json(allowed)));
        stats.replied(startedAt, null);
        observer?.permission(fn.requestType, allowed);
      })
      // runAuthorize denies on any throw, so this is a defect of ours: deny, as a throw would.
      .catch((err: unknown) => {
        logger.error({ err, function: fn.requestType }, 'permission check failed');
        scope.send(() => msg.respond(json(false)));
      });
  }
}
