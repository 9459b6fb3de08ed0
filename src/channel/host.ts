import type { Logger } from 'pino';
import type { Telemetry } from '../telemetry/events.js';
import type { Ref } from '../wire/message.js';
import type { ChannelBase } from './channel-base.js';
import type { Broadcast, PubSub } from './pubsub.js';
import type { Assigns, SocketInfo } from './types.js';

/** What a channel needs from the socket session that owns it (the session's ChannelInstances). */
export interface ChannelHost<A extends Assigns> {
  readonly info: SocketInfo<A>;
  readonly pubsub: PubSub;
  readonly logger: Logger;
  /** The gateway's telemetry (`channel_handled_in`). */
  readonly telemetry: Telemetry;
  /** Largest payload `broadcast()` accepts (the socket's maxBroadcastBytes). */
  readonly maxBroadcastBytes: number;
  writePush(channel: ChannelBase<A>, event: string, payload: unknown): void;
  writeReply(channel: ChannelBase<A>, ref: Ref, status: string, response: unknown): void;
  writeBroadcast(broadcast: Broadcast): void;
  /** phx_close / phx_error: both ref slots carry the join_ref the transport stored. */
  writeControl(channel: ChannelBase<A>, event: 'phx_close' | 'phx_error', payload: object): void;
  /** Forgets the channel: session map, topic subscription, presence entries. */
  detach(channel: ChannelBase<A>): void;
  /** A callback of `channel` threw or rejected: log it with the socket's context and count it. */
  channelError(channel: ChannelBase<A>, err: unknown, message: string): void;
}
