/**
 * `<p>.presence.get` (protocol/presence.md): the cluster-wide presence_state of a topic, for
 * workers and tools, answered from ClusterPresence's `list`.
 */
import { headers as natsHeaders, type Msg } from '@nats-io/nats-core';
import { ERROR_CODES, H } from '../nats/headers.js';
import type { PresenceState } from '../presence/tracker.js';
import type { ClusterLink } from './link.js';
import { decodeGetRequest, encodeJson } from './presence-wire.js';

/** Largest `<p>.presence.get` request read. */
const MAX_GET_REQUEST_BYTES = 64 * 1024;

/** Answers one get request (`msg` has a reply subject); failures go back as service errors. */
export function answerPresenceGet(
  msg: Msg,
  link: ClusterLink,
  list: (topic: string) => PresenceState,
  maxMessageBytes: number,
): void {
  const topic = decodeGetRequest(msg.data, MAX_GET_REQUEST_BYTES);
  if (!topic.ok) return replyError(msg, ERROR_CODES.badRequest, topic.why);
  let state: PresenceState;
  try {
    state = list(topic.value);
  } catch (err) {
    // The `fetch` option is user code; its failure is this request's, not the gateway's.
    return replyError(msg, ERROR_CODES.failed, `presence fetch failed: ${String(err)}`);
  }
  const body = encodeJson(state);
  if (body.length > (link.nc.info?.max_payload ?? maxMessageBytes))
    return replyError(msg, ERROR_CODES.failed, 'presence state exceeds max_payload');
  msg.respond(body);
}

function replyError(msg: Msg, code: number, message: string): void {
  const h = natsHeaders();
  h.set(H.serviceError, message);
  h.set(H.serviceErrorCode, String(code));
  msg.respond(new Uint8Array(0), { headers: h });
}
