/** The socket and channel family of the gateway's metrics, read from `GatewayStats` at scrape. */
import type { Registry } from 'prom-client';
import type { GatewayStats } from '../socket/stats.js';
import { readCounter, readGauge } from './read-at-scrape.js';

/** Socket close reasons counted from `GatewayStats` (`socket_closes_total{reason}`). */
const CLOSE_REASONS = [
  ['slow_consumer', 'slowConsumers'],
  ['flood', 'floods'],
  ['token_expired', 'tokenExpired'],
  ['invalid_frame', 'invalidFrames'],
  ['internal_error', 'internalErrors'],
] as const satisfies readonly (readonly [string, keyof GatewayStats])[];

/** Registers `<p>sockets`, `<p>channels`, the frame and byte counters and the refusal counters. */
export function registerSocketMetrics(registry: Registry, p: string, stats: GatewayStats): void {
  readGauge(
    registry,
    { name: `${p}sockets`, help: 'Open sockets by transport.', labelNames: ['transport'] },
    (set) => {
      set({ transport: 'websocket' }, stats.sockets - stats.longpollSessions);
      set({ transport: 'longpoll' }, stats.longpollSessions);
    },
  );
  readGauge(
    registry,
    { name: `${p}channels`, help: 'Joined channels by transport.', labelNames: ['transport'] },
    (set) => {
      set({ transport: 'websocket' }, stats.channels - stats.longpollChannels);
      set({ transport: 'longpoll' }, stats.longpollChannels);
    },
  );
  readCounter(registry, { name: `${p}messages_in_total`, help: 'Client frames received.' }, (set) =>
    set({}, stats.messagesIn),
  );
  readCounter(
    registry,
    { name: `${p}messages_out_total`, help: 'Frames sent to clients.' },
    (set) => set({}, stats.messagesOut),
  );
  readCounter(
    registry,
    { name: `${p}bytes_in_total`, help: 'Bytes of client frames received (payloads).' },
    (set) => set({}, stats.bytesIn),
  );
  readCounter(
    registry,
    { name: `${p}bytes_out_total`, help: 'Bytes of frames sent to clients (payloads).' },
    (set) => set({}, stats.bytesOut),
  );
  readCounter(
    registry,
    {
      name: `${p}socket_closes_total`,
      help: 'Sockets the gateway closed, by reason (slow_consumer, flood, token_expired, invalid_frame, internal_error).',
      labelNames: ['reason'],
    },
    (set) => {
      for (const [reason, field] of CLOSE_REASONS) set({ reason }, stats[field]);
    },
  );
  readCounter(
    registry,
    { name: `${p}dropped_frames_total`, help: 'Frames not sent: the client cannot carry them.' },
    (set) => set({}, stats.droppedFrames),
  );
  readCounter(
    registry,
    {
      name: `${p}rate_limited_messages_total`,
      help: 'Client messages refused by the per-socket message rate.',
    },
    (set) => set({}, stats.rateLimitedMessages),
  );
  readCounter(
    registry,
    {
      name: `${p}rate_limited_connects_total`,
      help: 'Connects refused by the per-IP connect limit.',
    },
    (set) => set({}, stats.rateLimitedConnects),
  );
  readCounter(
    registry,
    {
      name: `${p}channel_errors_total`,
      help: 'Channel callbacks that threw or rejected (join, handleIn, handleOut, terminate).',
    },
    (set) => set({}, stats.channelErrors),
  );
  readCounter(
    registry,
    { name: `${p}connect_errors_total`, help: 'Connect hooks that threw (HTTP 500).' },
    (set) => set({}, stats.connectErrors),
  );
}
