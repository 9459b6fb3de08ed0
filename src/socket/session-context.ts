import type { Logger } from 'pino';
import type { PubSub } from '../channel/pubsub.js';
import type { ChannelRouter } from '../channel/router.js';
import type { Assigns, PeerAddress } from '../channel/types.js';
import type { InboundByteRateOptions, TokenRefresher } from '../config/socket-options.js';
import type { Params } from '../http/query.js';
import type { Presence } from '../presence/presence.js';
import type { MessageRateOptions } from '../ratelimit/message-limit.js';
import type { Telemetry } from '../telemetry/events.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import type { Serializer } from '../wire/serializer.js';
import type { Session } from './session.js';
import type { GatewayStats } from './stats.js';

/** Everything a session shares with the other sessions of its socket mount. */
export interface SessionContext<A extends Assigns> {
  readonly router: ChannelRouter<A>;
  readonly pubsub: PubSub;
  readonly presence: Presence;
  readonly wheel: TimerWheel;
  readonly logger: Logger;
  readonly stats: GatewayStats;
  readonly telemetry: Telemetry;
  readonly maxChannels: number;
  readonly joinTimeoutMs: number;
  readonly maxQueuedFrames: number;
  readonly messageRate: Required<MessageRateOptions> | null;
  /** Client bytes per socket, checked before parsing (null: unlimited). */
  readonly inboundByteRate: Required<InboundByteRateOptions> | null;
  /** Largest payload a channel may broadcast. */
  readonly maxBroadcastBytes: number;
  /** Handles `access_token` pushed on the `phoenix` topic (null: not offered). */
  readonly refreshToken: TokenRefresher | null;
  onTeardown(session: Session<A>): void;
}

/** What an accepted handshake opens a session with. */
export interface SessionInit<A extends Assigns> {
  readonly id: string | null;
  readonly assigns: A;
  readonly params: Params;
  readonly peer: PeerAddress;
  readonly serializer: Serializer;
  /** When the connect token expires (epoch ms): the socket is closed then. Null: never. */
  readonly expiresAt?: number | null;
}

/** The error reply to a frame for a topic the socket has not joined, or no route matches. */
export const UNMATCHED_TOPIC = { reason: 'unmatched topic' } as const;
/** The empty `ok` reply (and phx_close) payload. */
export const EMPTY = {} as const;
