/**
 * The relay's NATS messages (protocol/relay.md §2, protocol/schemas/relay-*.schema.json): what a
 * gateway sends to a group's owner and what the owner answers. Everything read from NATS is
 * checked here; anything else is refused.
 */
import { readJsonObject } from '../../nats/json-object.js';

export const RELAY_OPS = [
  'claim',
  'join',
  'leave',
  'accept',
  'mute',
  'unmute',
  'delete',
  'info',
  'relay',
  'ended',
] as const;
export type RelayOp = (typeof RELAY_OPS)[number];

/** An operation on a group, sent to its owner (the caller's identity comes from its gateway). */
export interface RelayRequest {
  op: RelayOp;
  group_id: string;
  /** The acting user (empty for `claim`). */
  user_id: string;
  /** The node id of the gateway sending it. */
  node: string;
  /** `accept`, `mute`, `unmute`: the member acted on. */
  target?: string;
  /** `join`: whether the caller's channel is on `node` (its end makes the member leave). */
  channel?: boolean;
  /** `relay`: the sender's request_id and the message. */
  request_id?: unknown;
  message?: unknown;
  /** `claim`: when the claimant started (ms since the epoch). */
  at?: number;
}

export type RelayReply = { ok: true; result: unknown } | { ok: false; error: string; code: number };

/**
 * Bounds on what is read from NATS: identifiers (user ids, node ids, group ids), error texts, and
 * the recipients of one delivery (independent of this node's maxMembers, which owners may set
 * differently; the cluster PubSub's byte limit bounds deliveries too).
 */
export const WIRE_LIMITS = {
  maxIdBytes: 1024,
  maxErrorChars: 1024,
  maxRecipients: 100_000,
} as const;

const OPS: ReadonlySet<string> = new Set(RELAY_OPS);

function id(value: unknown, allowEmpty = false): value is string {
  return (
    typeof value === 'string' &&
    (allowEmpty || value.length > 0) &&
    Buffer.byteLength(value) <= WIRE_LIMITS.maxIdBytes
  );
}

/** A request from NATS, or why it is refused. */
export function parseRequest(raw: unknown): RelayRequest | string {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return 'not an object';
  const r = raw as Record<string, unknown>;
  if (typeof r.op !== 'string' || !OPS.has(r.op)) return 'unknown op';
  const op = r.op as RelayOp;
  if (!id(r.group_id, true)) return 'bad group_id';
  if (!id(r.node)) return 'bad node';
  if (!id(r.user_id, op === 'claim')) return 'bad user_id';
  const request: RelayRequest = { op, group_id: r.group_id, user_id: r.user_id, node: r.node };
  switch (op) {
    case 'claim':
      if (typeof r.at !== 'number' || !Number.isFinite(r.at)) return 'bad at';
      request.at = r.at;
      break;
    case 'accept':
    case 'mute':
    case 'unmute':
      if (!id(r.target)) return 'bad target';
      request.target = r.target;
      break;
    case 'join':
      if (r.channel !== undefined && typeof r.channel !== 'boolean') return 'bad channel';
      request.channel = r.channel === true;
      break;
    case 'relay':
      request.request_id = r.request_id ?? null;
      request.message = r.message ?? null;
      break;
    default:
      break;
  }
  return request;
}

/** An owner's reply, or null when it is not one. */
export function parseReply(data: Uint8Array): RelayReply | null {
  const r = readJsonObject(data);
  if (r === null) return null;
  if (r.ok === true) return { ok: true, result: r.result ?? null };
  if (
    r.ok === false &&
    typeof r.error === 'string' &&
    r.error.length <= WIRE_LIMITS.maxErrorChars &&
    Number.isInteger(r.code) &&
    (r.code as number) >= 400 &&
    (r.code as number) <= 599
  ) {
    return { ok: false, error: r.error, code: r.code as number };
  }
  return null;
}
