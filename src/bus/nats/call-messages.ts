/**
 * A gen_api call as NATS messages: the request headers the worker reads, the reply read back as an
 * outcome (micro error headers or a JSON body), a worker's JSON text read as a value or kept raw,
 * a thrown request failure as an outcome, and the attempt's trace span ended with it.
 */
import type { Msg, MsgHdrs } from '@nats-io/nats-core';
import { ERROR_CODES, H } from '../../nats/headers.js';
import { OutboundHeaders } from '../../nats/outbound-headers.js';
import { REPLY_TRACE_HEADER, type AttemptSpan } from '../../tracing/call-span.js';
import { RAW_JSON_MIN_LENGTH, RawJson } from '../../wire/raw-json.js';
import type { RequestMeta } from '../../worker/context.js';
import { transportFailure, type CallOutcome } from '../types.js';
import { PayloadTooLargeError, RequestFailure } from './requester.js';

const decoder = new TextDecoder();

/** The gen_api request headers of a call, permission check or stream start. */
export function requestHeaders(meta: RequestMeta, timeoutMs: number): MsgHdrs {
  const h = new OutboundHeaders();
  h.append(H.requestId, meta.requestId);
  h.append(H.service, meta.service);
  h.append(H.requestType, meta.requestType);
  if (meta.version !== null) h.append(H.version, meta.version);
  if (meta.userId !== null) h.append(H.userId, meta.userId);
  if (meta.deviceId !== null) h.append(H.deviceId, meta.deviceId);
  if (meta.roles.length > 0) h.append(H.roles, JSON.stringify(meta.roles));
  h.append(H.responseType, meta.responseType);
  h.append(H.deadline, String(meta.deadline));
  h.append(H.timeout, String(timeoutMs));
  if (meta.gateway !== null) h.append(H.gateway, meta.gateway);
  return h;
}

/** A worker's reply: its body is the JSON result, or the micro error headers say what failed. */
/** `raw`: a successful result is kept as its JSON text (RawJson), checked but not parsed. */
export function readReply(msg: Msg, raw = false): CallOutcome {
  const error = msg.headers?.get(H.serviceError);
  if (error) {
    const code = Number(msg.headers?.get(H.serviceErrorCode)) || ERROR_CODES.failed;
    // 503: the instance is draining; 404: it does not have the function (stale discovery).
    if (code === ERROR_CODES.unavailable || code === ERROR_CODES.notFound)
      return transportFailure('unavailable', error);
    if (code === ERROR_CODES.deadline) return transportFailure('timeout', error);
    return { ok: false, kind: 'business', message: error, code };
  }
  if (msg.data.length === 0) return { ok: true, result: null };
  const result = readJson(decoder.decode(msg.data), raw);
  if (result !== NOT_JSON) return { ok: true, result };
  return {
    ok: false,
    kind: 'business',
    message: 'worker reply is not JSON',
    code: ERROR_CODES.failed,
  };
}

/** What readJson gives for text that is not JSON. */
export const NOT_JSON = Symbol('not JSON');

/** A worker's JSON text as its value, or as a RawJson when `raw`; NOT_JSON when it is not JSON. */
export function readJson(text: string, raw: boolean): unknown {
  if (raw && text.length >= RAW_JSON_MIN_LENGTH) return RawJson.from(text) ?? NOT_JSON;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return NOT_JSON;
  }
}

/** Ends a traced attempt's span with its outcome and the worker's reply traceparent. */
export function endAttempt(
  span: AttemptSpan | null,
  outcome: CallOutcome,
  reply: Msg | null,
): void {
  if (span === null) return;
  span.end(
    outcome.ok ? outcome : { ok: false, kind: outcome.kind, message: outcome.message },
    reply?.headers?.get(REPLY_TRACE_HEADER) ?? '',
  );
}

/** A request that threw (no reply) as the attempt's outcome. */
export function failureOutcome(err: unknown): CallOutcome {
  if (err instanceof RequestFailure) return transportFailure(err.reason, err.message);
  // The client's own limit: the request can never be sent, so it is the caller's error (413).
  if (err instanceof PayloadTooLargeError)
    return { ok: false, kind: 'business', message: 'Request too large', code: 413 };
  return transportFailure('disconnected', (err as Error).message);
}
