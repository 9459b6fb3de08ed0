import type { Ref } from '../wire/message.js';
import type { ProtocolVersion } from '../wire/serializer.js';
import type { Params } from '../http/query.js';
import type { TransportName } from '../transport/host.js';

/** Socket assigns: whatever the connect hook returned (user_id, roles, device_id, …). */
export type Assigns = object;

/** A value or a promise of it: callbacks may be sync or async. */
export type MaybePromise<T> = T | PromiseLike<T>;

/** A reply to a client message: `{"status": status, "response": response}` on the wire. */
export interface Reply {
  readonly status: string;
  readonly response: unknown;
}

/**
 * Why a channel stops. `'normal'`, `'shutdown'` and `{shutdown: …}` are graceful (the client gets
 * phx_close and does not rejoin); any other reason is abnormal (phx_error; the client rejoins).
 * (The two graceful strings are not spelled out in the type: `string` already includes them.)
 */
export type StopReason = string | { readonly shutdown: unknown } | Error;

/** Returned from `handleIn`/`handleOut` to stop the channel, optionally replying first. */
export interface Stop {
  readonly stop: StopReason;
  readonly reply?: Reply;
}

/** `join`: a Reply with status "ok" joins (its response is the join reply); any other refuses. */
export type JoinResult = Reply | void;
/** What `handleIn` returns: a reply, a stop, or nothing (no reply). */
export type HandleInResult = Reply | Stop | void;
/** What `handleOut` returns: a stop, or nothing. */
export type HandleOutResult = Stop | void;

/** Why `terminate` runs. */
export type TerminateReason =
  | { readonly kind: 'left' }
  | { readonly kind: 'closed' }
  | { readonly kind: 'duplicate_join' }
  | { readonly kind: 'join_timeout' }
  | { readonly kind: 'stop'; readonly reason: StopReason }
  | { readonly kind: 'crash'; readonly error: unknown };

// The transport a socket connected over: named where the transports are (the layer below).
export type { TransportName };

/** The client's address (the TCP peer). */
export interface PeerAddress {
  /** IP address. */
  readonly address: string;
  /** TCP port. */
  readonly port: number;
}

/** Connection-level facts every channel of a socket shares. */
export interface SocketInfo<A extends Assigns = Assigns> {
  /** The id returned by the connect hook; `gateway.disconnect(id)` closes every socket with it. */
  readonly id: string | null;
  /** What the connect hook returned. */
  readonly assigns: Readonly<A>;
  /** The transport it connected over. */
  readonly transport: TransportName;
  /** The serializer version the client negotiated. */
  readonly vsn: ProtocolVersion;
  /** Connect params, decoded like Plug does (they include `vsn`). */
  readonly params: Params;
  /** The client's address. */
  readonly peer: PeerAddress;
  /** Bytes written to this connection but not yet sent to the client (flow control). */
  readonly bufferedAmount: number;
  /**
   * Resolves once `bufferedAmount` is at most `bytes`, or `signal` aborts (never rejects). Woken
   * by the transport when its buffer shrinks (a frame written out, a LongPoll poll answered).
   */
  whenBufferedAtMost(bytes: number, signal: AbortSignal): Promise<void>;
  /** Unique per connection (rate limits keyed by socket). */
  readonly connectionId: string;
}

/** Captured with `channel.replyRef()` to answer a message after `handleIn` has returned. */
export interface ReplyRef {
  /** The ref of the message to answer. */
  readonly ref: Ref;
  /** The join_ref of the channel it came on. */
  readonly joinRef: Ref;
}

/**
 * A joined channel: one topic on one socket. Handlers receive it in every callback. It lives
 * from the join until leave, stop, crash or disconnect; `signal` aborts at that moment.
 */
export interface Channel<A extends Assigns = Assigns> {
  /** The topic joined. */
  readonly topic: string;
  /** The channel's join_ref: the join message's join_ref, or its ref when that was null. */
  readonly joinRef: Ref;
  /** The ref of the message being handled (inside `handleIn`). */
  readonly ref: Ref;
  /** Size in bytes of the frame being handled (inside `handleIn`). */
  readonly messageSize: number;
  /** The socket this channel is joined on. */
  readonly socket: SocketInfo<A>;
  /** Channel assigns: starts as the socket's assigns; `assign` changes this channel's copy only. */
  readonly assigns: Readonly<A>;
  /** True between the join reply and the end of the channel. */
  readonly joined: boolean;
  /** Aborted when the channel stops for any reason. */
  readonly signal: AbortSignal;
  /** Merges `values` into this channel's assigns. */
  assign(values: Partial<A>): void;
  /** Sends `event` to this client only. Inside `join`, pushes are held until after the join reply. */
  push(event: string, payload?: unknown): void;
  /**
   * Sends `event` to every subscriber of the topic, this one included. Throws
   * ChannelBroadcastTooLargeError (nothing sent) for a payload over the socket's maxBroadcastBytes.
   */
  broadcast(event: string, payload?: unknown): void;
  /** As `broadcast`, except to this channel. */
  broadcastFrom(event: string, payload?: unknown): void;
  /** Captures the current message so `reply` can answer it later (Phoenix's socket_ref). */
  replyRef(): ReplyRef;
  /** Answers the message captured by `replyRef()`. */
  reply(ref: ReplyRef, reply: Reply): void;
  /** Stops the channel from outside a callback (after async work, say). */
  stop(reason?: StopReason, reply?: Reply): void;
}

/**
 * A channel implementation: the Phoenix `Channel` behaviour without a process per channel.
 * Messages to one channel are handled one at a time, in order: a callback that returns a
 * promise holds the next message of that channel (not of other channels or sockets) until it
 * settles. A callback that throws or rejects crashes this channel only (`phx_error`).
 */
export interface ChannelHandler<A extends Assigns = Assigns> {
  /** Decides the join: `ok(reply?)` joins, `error(reply?)` refuses, nothing joins with `{}`. */
  join(topic: string, payload: unknown, channel: Channel<A>): MaybePromise<JoinResult>;
  /** Runs right after a successful join reply is written (Phoenix's `send(self(), :after_join)`). */
  afterJoin?(channel: Channel<A>): MaybePromise<void>;
  /** Handles a client message; returns a reply, a stop, or nothing (no reply). */
  handleIn?(event: string, payload: unknown, channel: Channel<A>): MaybePromise<HandleInResult>;
  /** Broadcast events this channel wants to see in `handleOut` instead of the fastlane. */
  readonly intercept?: readonly string[];
  /**
   * Runs for each broadcast of an `intercept`ed event instead of pushing it: push it (or another
   * payload) with `channel.push`, or not at all.
   */
  handleOut?(event: string, payload: unknown, channel: Channel<A>): MaybePromise<HandleOutResult>;
  /** Runs once when the channel ends, with the reason. */
  terminate?(reason: TerminateReason, channel: Channel<A>): MaybePromise<void>;
}

/** A `{status: "ok"}` reply (join accepted, or `handleIn`'s answer). */
export function ok(response: unknown = {}): Reply {
  return { status: 'ok', response };
}

/** A `{status: "error"}` reply (join refused, or `handleIn`'s answer). */
export function error(response: unknown = {}): Reply {
  return { status: 'error', response };
}

/** A reply with any status. */
export function reply(status: string, response: unknown = {}): Reply {
  return { status, response };
}

/** Stops the channel with `reason` (`phx_close` for "normal"), after `replyFirst` if given. */
export function stop(reason: StopReason = 'normal', replyFirst?: Reply): Stop {
  return replyFirst === undefined ? { stop: reason } : { stop: reason, reply: replyFirst };
}

/** Identity helper that gives a handler object its types. */
export function defineChannel<A extends Assigns = Assigns>(
  handler: ChannelHandler<A>,
): ChannelHandler<A> {
  return handler;
}

export function isGracefulStop(reason: StopReason): boolean {
  if (reason === 'normal' || reason === 'shutdown') return true;
  return (
    typeof reason === 'object' &&
    reason !== null &&
    !(reason instanceof Error) &&
    'shutdown' in reason
  );
}
