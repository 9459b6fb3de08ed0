/**
 * The nested groups of `SocketOptions` (bounded work per client, message rate, transports and the
 * Origin policy), each resolved with its defaults by one function; resolveSocketOptions composes
 * them.
 */
import type { Assigns } from '../channel/types.js';
import type { CheckOrigin } from '../http/check-origin.js';
import { MESSAGE_RATE_DEFAULTS, type MessageRateOptions } from '../ratelimit/message-limit.js';
import { OptionError } from './errors.js';
import { bool, checkKeys, normalizePath, positiveInt } from './option-checks.js';
import { SOCKET_DEFAULTS } from './socket-defaults.js';
import type {
  InboundByteRateOptions,
  LongPollOptions,
  ResolvedSocketOptions,
  SocketOptions,
  WebSocketOptions,
} from './socket-options.js';

export function checkOriginOption(value: unknown): CheckOrigin {
  if (value === undefined) return true;
  if (typeof value === 'boolean' || value === 'conn' || typeof value === 'function')
    return value as CheckOrigin;
  if (Array.isArray(value) && value.every((entry) => typeof entry === 'string')) return value;
  throw new OptionError('checkOrigin must be true, false, "conn", a list of origins or a function');
}

/** The bounded-work options (one block: frame size, inbound byte rate, slow consumers, broadcasts). */
export function resolveClientBounds(
  options: SocketOptions<Assigns>,
  maxFrameSize: number,
): Pick<
  ResolvedSocketOptions<Assigns>,
  | 'inboundByteRate'
  | 'maxBufferedBytes'
  | 'slowConsumerGraceMs'
  | 'maxBufferedBytesHard'
  | 'maxBroadcastBytes'
> {
  let inboundByteRate: Required<InboundByteRateOptions> | null = null;
  if (options.inboundByteRate !== false) {
    const rate: InboundByteRateOptions = options.inboundByteRate ?? {};
    if (typeof rate !== 'object' || rate === null)
      throw new OptionError('inboundByteRate must be an object or false');
    checkKeys('inboundByteRate options', rate, new Set(['bytesPerSecond', 'burstBytes']));
    const defaults = SOCKET_DEFAULTS.inboundByteRate;
    inboundByteRate = {
      bytesPerSecond: positiveInt(
        'inboundByteRate.bytesPerSecond',
        rate.bytesPerSecond,
        defaults.bytesPerSecond,
      ),
      burstBytes: positiveInt(
        'inboundByteRate.burstBytes',
        rate.burstBytes,
        Math.max(defaults.burstBytes, maxFrameSize),
      ),
    };
    if (inboundByteRate.burstBytes < maxFrameSize) {
      throw new OptionError(
        `inboundByteRate.burstBytes (${inboundByteRate.burstBytes}) must be at least maxFrameSize (${maxFrameSize}): a largest frame must fit`,
      );
    }
  }
  const maxBufferedBytes = positiveInt(
    'maxBufferedBytes',
    options.maxBufferedBytes,
    SOCKET_DEFAULTS.maxBufferedBytes,
  );
  const maxBufferedBytesHard = positiveInt(
    'maxBufferedBytesHard',
    options.maxBufferedBytesHard,
    Math.max(SOCKET_DEFAULTS.maxBufferedBytesHard, maxBufferedBytes),
  );
  if (maxBufferedBytesHard < maxBufferedBytes) {
    throw new OptionError(
      `maxBufferedBytesHard (${maxBufferedBytesHard}) must be at least maxBufferedBytes (${maxBufferedBytes})`,
    );
  }
  return {
    inboundByteRate,
    maxBufferedBytes,
    slowConsumerGraceMs: positiveInt(
      'slowConsumerGraceMs',
      options.slowConsumerGraceMs,
      SOCKET_DEFAULTS.slowConsumerGraceMs,
    ),
    maxBufferedBytesHard,
    maxBroadcastBytes: positiveInt(
      'maxBroadcastBytes',
      options.maxBroadcastBytes,
      SOCKET_DEFAULTS.maxBroadcastBytes,
    ),
  };
}

/** `messageRate`: null when false; an object given without `burst` bursts to its own limit. */
export function resolveMessageRate(
  value: SocketOptions<Assigns>['messageRate'],
): Required<MessageRateOptions> | null {
  if (value === false) return null;
  const rate: Partial<MessageRateOptions> = value ?? {};
  checkKeys(
    'messageRate options',
    rate,
    new Set(['limit', 'windowMs', 'burst', 'floodDenials', 'floodWindowMs']),
  );
  const limit = positiveInt('messageRate.limit', rate.limit, MESSAGE_RATE_DEFAULTS.limit);
  return {
    limit,
    windowMs: positiveInt('messageRate.windowMs', rate.windowMs, MESSAGE_RATE_DEFAULTS.windowMs),
    burst: positiveInt(
      'messageRate.burst',
      rate.burst,
      value === undefined ? MESSAGE_RATE_DEFAULTS.burst : limit,
    ),
    floodDenials: positiveInt(
      'messageRate.floodDenials',
      rate.floodDenials,
      MESSAGE_RATE_DEFAULTS.floodDenials,
    ),
    floodWindowMs: positiveInt(
      'messageRate.floodWindowMs',
      rate.floodWindowMs,
      MESSAGE_RATE_DEFAULTS.floodWindowMs,
    ),
  };
}

/** `websocket`: null when false; `true` or an object (missing fields from SOCKET_DEFAULTS). */
export function resolveWebSocket(
  value: SocketOptions<Assigns>['websocket'],
): Required<WebSocketOptions> | null {
  if (value === false) return null;
  const ws = typeof value === 'object' ? value : {};
  checkKeys('websocket options', ws, new Set(['path', 'idleTimeoutMs', 'compress']));
  return {
    path: normalizePath('websocket.path', ws.path, SOCKET_DEFAULTS.websocket.path),
    idleTimeoutMs: positiveInt(
      'websocket.idleTimeoutMs',
      ws.idleTimeoutMs,
      SOCKET_DEFAULTS.websocket.idleTimeoutMs,
    ),
    compress: bool('websocket.compress', ws.compress, SOCKET_DEFAULTS.websocket.compress),
  };
}

/** `longpoll`: null when false; `maxBodyBytes` defaults to the mount's maxFrameSize. */
export function resolveLongPoll(
  value: SocketOptions<Assigns>['longpoll'],
  maxFrameSize: number,
): Required<LongPollOptions> | null {
  if (value === false) return null;
  const lp = typeof value === 'object' ? value : {};
  checkKeys('longpoll options', lp, new Set(['path', 'windowMs', 'maxBatchLines', 'maxBodyBytes']));
  return {
    path: normalizePath('longpoll.path', lp.path, SOCKET_DEFAULTS.longpoll.path),
    windowMs: positiveInt('longpoll.windowMs', lp.windowMs, SOCKET_DEFAULTS.longpoll.windowMs),
    maxBatchLines: positiveInt(
      'longpoll.maxBatchLines',
      lp.maxBatchLines,
      SOCKET_DEFAULTS.longpoll.maxBatchLines,
    ),
    maxBodyBytes: positiveInt('longpoll.maxBodyBytes', lp.maxBodyBytes, maxFrameSize),
  };
}
