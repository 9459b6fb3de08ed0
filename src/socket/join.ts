import { ChannelInstance, TERMINATE } from '../channel/instance.js';
import type { Assigns, Reply } from '../channel/types.js';
import type { TimerEntry } from '../util/timer-wheel.js';
import { PHX, type InboundMessage } from '../wire/message.js';
import { EMPTY, UNMATCHED_TOPIC } from './session-context.js';
import type { Session } from './session.js';

/*
 * Joining a channel: the route, the channel limit, the handler's join (sync, or async with the
 * socket's frames waiting behind it up to the join timeout), the reply, and the
 * `channel_joined` telemetry event.
 */

const TOO_MANY_CHANNELS = { reason: 'too many channels joined' } as const;
const JOIN_TIMEOUT = { reason: 'join timeout' } as const;

function isPromise(value: unknown): value is Promise<Reply> {
  return value instanceof Promise;
}

/** A join whose handler went async: the socket waits for it, up to the join timeout. */
export class PendingJoin<A extends Assigns> implements TimerEntry {
  timerSlot = -1;
  private done = false;
  readonly promise: Promise<void>;
  private release!: () => void;

  constructor(
    private readonly session: Session<A>,
    readonly instance: ChannelInstance<A>,
    readonly message: InboundMessage,
    readonly previous: ChannelInstance<A> | undefined,
    /** performance.now() at the join frame, or -1 when no one listens to `channel_joined`. */
    readonly startedAt: number,
  ) {
    this.promise = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  settle(reply: Reply): void {
    if (this.finish())
      completeJoin(this.session, this.instance, this.message, reply, this.previous, this.startedAt);
  }

  onTimer(): void {
    if (this.finish()) joinTimedOut(this.session, this);
  }

  /** The socket closed while the join was pending. */
  abandon(): void {
    if (this.finish()) this.instance.abandon(TERMINATE.closed);
  }

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    this.session.wheel.cancel(this);
    if (this.session.joining === this) this.session.joining = null;
    this.release();
    return true;
  }
}

/**
 * A `phx_join`. Returns a promise only when the handler's join went async: the frames behind it
 * wait for it.
 */
export function join<A extends Assigns>(
  session: Session<A>,
  message: InboundMessage,
): Promise<void> | undefined {
  const { topic } = message;
  const ctx = session.ctx;
  const previous = session.channels.get(topic);
  // Duplicate join: the old channel goes first (so it does not count against the limit);
  // its phx_close follows the new join's reply.
  if (previous) previous.shutdown(TERMINATE.duplicateJoin, null);
  const handler = ctx.router.match(topic);
  const startedAt = ctx.telemetry.has('channel_joined') ? performance.now() : -1;
  if (!handler) {
    session.writeReplyFrame(null, message.ref, topic, 'error', UNMATCHED_TOPIC);
    if (previous) session.writeControl(previous, PHX.close, EMPTY);
    if (startedAt >= 0) joinRefused(session, topic, UNMATCHED_TOPIC.reason, startedAt);
    return undefined;
  }
  if (session.channels.size >= ctx.maxChannels) {
    session.writeReplyFrame(message.joinRef, message.ref, topic, 'error', TOO_MANY_CHANNELS);
    if (previous) session.writeControl(previous, PHX.close, EMPTY);
    if (startedAt >= 0) joinRefused(session, topic, TOO_MANY_CHANNELS.reason, startedAt);
    return undefined;
  }
  const instance = new ChannelInstance<A>(topic, handler, session, message.joinRef);
  const outcome = instance.runJoin(message.payload, message.ref);
  if (!isPromise(outcome)) {
    completeJoin(session, instance, message, outcome, previous, startedAt);
    return undefined;
  }
  const pending = new PendingJoin(session, instance, message, previous, startedAt);
  session.joining = pending;
  ctx.wheel.schedule(pending, ctx.wheel.clock() + ctx.joinTimeoutMs);
  // runJoin turns a failing join() into its error reply, so a rejection here is a defect in
  // completing the join: the socket's state is unknown, so it goes (1011).
  outcome.then((reply) => pending.settle(reply)).catch((err: unknown) => session.fail(err, topic));
  return pending.promise;
}

/** Writes the join reply and, on success, makes the channel live. */
function completeJoin<A extends Assigns>(
  session: Session<A>,
  instance: ChannelInstance<A>,
  message: InboundMessage,
  reply: Reply,
  previous: ChannelInstance<A> | undefined,
  startedAt: number,
): void {
  if (session.closed) {
    instance.abandon(TERMINATE.closed);
    return;
  }
  if (startedAt >= 0) joinReplied(session, instance.topic, reply, startedAt);
  const joined = reply.status === 'ok';
  const stats = session.ctx.stats;
  if (joined) {
    session.channels.set(instance.topic, instance);
    stats.channels++;
    if (session.connection.transport === 'longpoll') stats.longpollChannels++;
  } else {
    instance.discard();
  }
  session.writeReplyFrame(
    message.joinRef,
    message.ref,
    instance.topic,
    reply.status,
    reply.response,
  );
  if (previous) session.writeControl(previous, PHX.close, EMPTY);
  if (joined) instance.activate();
}

function joinTimedOut<A extends Assigns>(session: Session<A>, pending: PendingJoin<A>): void {
  const { instance, message, previous } = pending;
  instance.abandon(TERMINATE.joinTimeout);
  session.logger.warn(
    { topic: instance.topic, timeoutMs: session.ctx.joinTimeoutMs },
    'channel join timed out',
  );
  session.writeReplyFrame(message.joinRef, message.ref, instance.topic, 'error', JOIN_TIMEOUT);
  if (previous) session.writeControl(previous, PHX.close, EMPTY);
  if (pending.startedAt >= 0)
    joinRefused(session, instance.topic, JOIN_TIMEOUT.reason, pending.startedAt);
}

/** `channel_joined` for a join's reply; an error reply's `reason` is the event's. */
function joinReplied(session: Session, topic: string, reply: Reply, startedAt: number): void {
  if (reply.status === 'ok') {
    session.ctx.telemetry.emit('channel_joined', {
      topic,
      result: 'ok',
      durationMs: performance.now() - startedAt,
      transport: session.connection.transport,
    });
    return;
  }
  const reason = (reply.response as { reason?: unknown } | null)?.reason;
  joinRefused(session, topic, typeof reason === 'string' ? reason : reply.status, startedAt);
}

function joinRefused(session: Session, topic: string, reason: string, startedAt: number): void {
  session.ctx.telemetry.emit('channel_joined', {
    topic,
    result: 'error',
    reason,
    durationMs: performance.now() - startedAt,
    transport: session.connection.transport,
  });
}
