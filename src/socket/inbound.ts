import type { ChannelInstance } from '../channel/instance.js';
import type { Assigns } from '../channel/types.js';
import { MESSAGE_POLICY, MessageRate } from '../ratelimit/message-limit.js';
import { PHX, type InboundMessage } from '../wire/message.js';
import { CLOSE } from './close-codes.js';
import { join } from './join.js';
import { EMPTY, UNMATCHED_TOPIC } from './session-context.js';
import type { Session } from './session.js';
import { ACCESS_TOKEN, refreshToken } from './token-refresh.js';

/*
 * One client frame, once its turn in the session's queue came: the inbound byte rate (before
 * parsing), decoding, the message rate, and dispatch — heartbeat, token refresh, join, leave, or
 * a message to a joined channel (join_ref fenced).
 */

/**
 * The inbound byte rate, before anything is parsed: a frame the socket's bucket cannot pay
 * for closes the socket (1008 "byte rate exceeded"), so a client flooding large frames costs
 * its own connection and never the parse time of other clients.
 */
export function withinByteRate(session: Session, size: number): boolean {
  const ctx = session.ctx;
  const rate = ctx.inboundByteRate;
  if (rate === null) return true;
  const now = ctx.wheel.clock();
  if (session.byteTokens < 0) {
    session.byteTokens = rate.burstBytes;
  } else {
    const refill = ((now - session.byteStamp) * rate.bytesPerSecond) / 1000;
    session.byteTokens = Math.min(rate.burstBytes, session.byteTokens + refill);
  }
  session.byteStamp = now;
  if (size <= session.byteTokens) {
    session.byteTokens -= size;
    return true;
  }
  ctx.stats.floods++;
  session.logger.warn(
    { peer: session.peer.address, id: session.id, size, bytesPerSecond: rate.bytesPerSecond },
    'inbound byte rate exceeded, closing the socket',
  );
  session.close(CLOSE.flood, 'byte rate exceeded');
  return false;
}

/** Decodes a frame; an undecodable one closes the connection (1011) and gives null. */
export function decodeFrame(
  session: Session,
  data: Buffer | string,
  isBinary: boolean,
): InboundMessage | null {
  session.frameSize = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  try {
    return session.serializer.decode(data, isBinary);
  } catch (err) {
    session.ctx.stats.invalidFrames++;
    session.logger.warn(
      { err: (err as Error).message, peer: session.peer.address },
      'undecodable frame, closing',
    );
    session.close(CLOSE.invalidFrame, (err as Error).message);
    return null;
  }
}

/**
 * Routes one decoded frame. Returns a promise only when the frames behind it must wait (an
 * async join, a token refresh).
 */
export function dispatchFrame<A extends Assigns>(
  session: Session<A>,
  message: InboundMessage,
): Promise<void> | undefined {
  const { topic, event } = message;
  if (event === PHX.heartbeat && topic === PHX.heartbeatTopic) {
    session.writeReplyFrame(null, message.ref, topic, 'ok', EMPTY);
    return undefined;
  }
  if (event === ACCESS_TOKEN && topic === PHX.heartbeatTopic && session.ctx.refreshToken !== null)
    return withinRate(session, message) ? refreshToken(session, message) : undefined;
  // Heartbeats and leaves are never limited: liveness and clean-up must always work.
  if (event !== PHX.leave && !withinRate(session, message)) return undefined;
  if (event === PHX.join) return join(session, message);
  const channel = session.channels.get(topic);
  if (event === PHX.leave) {
    if (!channel) session.writeReplyFrame(message.joinRef, message.ref, topic, 'ok', EMPTY);
    else if (fenced(session, channel, message)) channel.handleLeave(message.ref);
    return undefined;
  }
  if (!channel) {
    session.writeReplyFrame(null, message.ref, topic, 'error', UNMATCHED_TOPIC);
  } else if (fenced(session, channel, message)) {
    channel.handleMessage(event, message.payload, message.ref, session.frameSize);
  }
  return undefined;
}

/**
 * The per-socket message rate: an excess message is answered `{"reason":"rate_limited", ...}`
 * and dropped; a flood of them closes the socket (1008 "message flood").
 */
function withinRate(session: Session, message: InboundMessage): boolean {
  const ctx = session.ctx;
  const options = ctx.messageRate;
  if (options === null) return true;
  const rate = (session.rate ??= new MessageRate(options));
  const verdict = rate.check(ctx.wheel.clock());
  if (verdict === 'ok') return true;
  ctx.stats.rateLimitedMessages++;
  if (verdict === 'flood') {
    ctx.stats.floods++;
    session.logger.warn(
      { peer: session.peer.address, id: session.id },
      'message flood, closing the socket',
    );
    session.close(CLOSE.flood, 'message flood');
    return false;
  }
  const { decision } = rate;
  const joinRef =
    message.event === PHX.join
      ? message.joinRef
      : (session.channels.get(message.topic)?.joinRef ?? null);
  session.writeReplyFrame(joinRef, message.ref, message.topic, 'error', {
    reason: 'rate_limited',
    policy: MESSAGE_POLICY,
    limit: decision.limit,
    window_ms: decision.windowMs,
    remaining: decision.remaining,
    reset_ms: decision.resetMs,
    retry_after_ms: decision.retryAfterMs,
  });
  return false;
}

/** A message reaches a channel only with a null join_ref or exactly the stored one. */
function fenced<A extends Assigns>(
  session: Session<A>,
  channel: ChannelInstance<A>,
  message: InboundMessage,
): boolean {
  if (message.joinRef === null || message.joinRef === channel.storedJoinRef) return true;
  session.logger.debug(
    { topic: message.topic, joinRef: message.joinRef },
    'stale join_ref, message dropped',
  );
  return false;
}
