import { DEFAULT_PUBLIC_HOSTS } from '../http/check-origin.js';

/** The defaults of `SocketOptions` (README: Socket options). */
export const SOCKET_DEFAULTS = {
  path: '/socket',
  maxChannels: 100,
  joinTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  maxFrameSize: 65_536,
  inboundByteRate: { bytesPerSecond: 1_048_576, burstBytes: 1_048_576 },
  maxBufferedBytes: 1_048_576,
  slowConsumerGraceMs: 5_000,
  maxBufferedBytesHard: 33_554_432,
  maxBroadcastBytes: 8_388_608,
  maxQueuedFrames: 1_000,
  websocket: { path: '/websocket', idleTimeoutMs: 60_000, compress: false },
  longpoll: { path: '/longpoll', windowMs: 10_000, maxBatchLines: 100 },
  publicHosts: DEFAULT_PUBLIC_HOSTS,
  trustedProxies: [] as readonly string[],
  maxConnections: 100_000,
  maxConnectionsPerIp: 10_000,
  maxConnectionsPerUser: null,
  maxTopicBytes: 255,
} as const;
