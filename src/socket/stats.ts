/** Live gauges and counters of one gateway (metrics and leak checks read them). */
export interface GatewayStats {
  /** Open sessions (WebSocket connections + LongPoll sessions). */
  sockets: number;
  /** Joined channels over all sessions. */
  channels: number;
  /** LongPoll sessions alive. */
  longpollSessions: number;
  /** Joined channels of LongPoll sessions (the rest of `channels` are WebSocket ones). */
  longpollChannels: number;
  /** Client frames received (before decoding; refused and undecodable ones included). */
  messagesIn: number;
  /** Bytes of the client frames received (the frame payloads, without WebSocket/HTTP framing). */
  bytesIn: number;
  /** Frames handed to the transports for clients (pushes, replies, broadcasts, control). */
  messagesOut: number;
  /** Bytes of those frames (UTF-8 for text frames), without WebSocket/HTTP framing. */
  bytesOut: number;
  /** Server frames not sent because the client's serializer/transport cannot carry them. */
  droppedFrames: number;
  /** Sockets closed for passing maxBufferedBytes. */
  slowConsumers: number;
  /** Connections closed for an undecodable or oversize frame. */
  invalidFrames: number;
  /** Messages refused by the per-socket message rate. */
  rateLimitedMessages: number;
  /** Sockets closed for a flood of refused messages. */
  floods: number;
  /** Connections refused by the per-IP connect limit. */
  rateLimitedConnects: number;
  /**
   * Errors thrown or rejected by channel callbacks (join, afterJoin, handleIn, handleOut,
   * terminate): each one cost its channel (or its join) only.
   */
  channelErrors: number;
  /** Connect hooks that threw or rejected (the client got HTTP 500). */
  connectErrors: number;
  /** Sockets closed with 1011 because handling one of their frames failed inside the gateway. */
  internalErrors: number;
  /** Sockets closed with 4001 because the token they connected with expired. */
  tokenExpired: number;
}

export function createStats(): GatewayStats {
  return {
    sockets: 0,
    channels: 0,
    longpollSessions: 0,
    longpollChannels: 0,
    messagesIn: 0,
    bytesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    droppedFrames: 0,
    slowConsumers: 0,
    invalidFrames: 0,
    rateLimitedMessages: 0,
    floods: 0,
    rateLimitedConnects: 0,
    channelErrors: 0,
    connectErrors: 0,
    internalErrors: 0,
    tokenExpired: 0,
  };
}
