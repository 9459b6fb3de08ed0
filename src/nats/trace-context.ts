/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) as gen_api carries it: from clients
 * (request field or join param), to workers (NATS headers) and back. Shared by the gateway and the
 * worker SDK, so it depends on nothing but the platform. Anything that does not parse is ignored,
 * never an error: a bad traceparent must not fail a request.
 */

/** NATS header names of the trace context (protocol/nats.md §Headers): W3C's own, lower case. */
export const TRACE_HEADERS = {
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

/** Limits on what is accepted from outside. */
export const TRACE_LIMITS = {
  /** A version-00 traceparent is exactly this long (`00-<32 hex>-<16 hex>-<2 hex>`). */
  traceparentLength: 55,
  /** Longest tracestate kept (W3C asks vendors to propagate at least 512); longer is dropped. */
  maxTracestateLength: 512,
  /** Most tracestate list members (W3C's own limit). */
  maxTracestateMembers: 32,
} as const;

/**
 * The trace a request belongs to, as one hop hands it on: the trace id, the span the next hop's
 * work is a child of, and the headers to send (`traceparent`, `tracestate`).
 */
export interface RequestTrace {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** The current span's id (16 lowercase hex digits): the parent of the next hop. */
  readonly spanId: string;
  /** The trace flags byte (bit 0: sampled). */
  readonly flags: number;
  /** The W3C `traceparent` of the current span. */
  readonly traceparent: string;
  /** The W3C `tracestate` to pass on, or null. */
  readonly tracestate: string | null;
}

/** A parsed, valid traceparent and the tracestate that came with it. */
export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** The caller's span: 16 lowercase hex digits, not all zero. */
  readonly spanId: string;
  /** The trace flags byte (bit 0: sampled). */
  readonly flags: number;
  /** The raw tracestate, or null (none, or it did not parse). */
  readonly tracestate: string | null;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
// A list member: `key=value`; key per W3C (simple or tenant@system), value printable ASCII without
// `,` and `=`, not ending in a space.
const MEMBER =
  /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * A version-00 traceparent, strictly: exact length, lowercase hex, non-zero trace and span ids.
 * Other versions, upper case, extra fields or non-strings give null.
 */
export function parseTraceparent(
  value: unknown,
): { traceId: string; spanId: string; flags: number } | null {
  if (typeof value !== 'string' || value.length !== TRACE_LIMITS.traceparentLength) return null;
  const match = TRACEPARENT.exec(value);
  if (match === null) return null;
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string];
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

/**
 * A tracestate worth forwarding, or null: a string of at most `maxTracestateLength` characters
 * whose comma-separated members (at most `maxTracestateMembers`, empty ones allowed) are all
 * well-formed `key=value` pairs.
 */
export function parseTracestate(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > TRACE_LIMITS.maxTracestateLength) return null;
  const members = value.split(',');
  if (members.length > TRACE_LIMITS.maxTracestateMembers) return null;
  let any = false;
  for (const raw of members) {
    const member = raw.trim();
    if (member === '') continue;
    if (!MEMBER.test(member)) return null;
    any = true;
  }
  return any ? value.trim() : null;
}

/** Both fields as a client or a peer sent them; null unless the traceparent is valid. */
export function readTraceContext(traceparent: unknown, tracestate: unknown): TraceContext | null {
  if (traceparent === undefined || traceparent === null || traceparent === '') return null;
  const parent = parseTraceparent(traceparent);
  if (parent === null) return null;
  return { ...parent, tracestate: parseTracestate(tracestate) };
}

/** The version-00 traceparent of a span. */
export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, '0')}`;
}
