import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { TimerWheel } from '../util/timer-wheel.js';
import type { EncodedFrame } from '../wire/serializer.js';
import type { SessionTokens } from './longpoll-token.js';
import type { SlowConsumerLimits } from './slow-consumer.js';

/*
 * What a transport needs from the layer above it. transport/ sits below socket/: a transport
 * carries frames between a client and a session it knows only through these interfaces, and the
 * socket layer (SocketMount) supplies a TransportHost when it creates its transports. So
 * transport/ never imports socket/ (test/unit/layering.test.ts checks it).
 */

/** The transport a socket connected over. */
export type TransportName = 'websocket' | 'longpoll';

/** The transport side of a session: a WebSocket, or a LongPoll session. */
export interface Connection {
  readonly transport: TransportName;
  /** False for LongPoll, which cannot carry server → client binary frames. */
  readonly supportsBinary: boolean;
  /** True when text frames are best handed over as UTF-8 bytes (shared by a fan-out). */
  readonly prefersBytes: boolean;
  /** Bytes queued towards the client and not yet sent. */
  readonly bufferedAmount: number;
  /** Resolves once `bufferedAmount` is at most `bytes` (woken by the transport's drain events) or `signal` aborts. */
  whenBufferedAtMost(bytes: number, signal: AbortSignal): Promise<void>;
  send(frame: EncodedFrame, textBytes?: Buffer): void;
  /** Closes the connection; the transport then calls `session.teardown()`. */
  close(code: number, reason: string): void;
  pauseInput(): void;
  resumeInput(): void;
}

/** The session side of a connection, as a transport drives it. */
export interface TransportSession {
  /** True once the session ended (closed by either side). */
  readonly closed: boolean;
  /** The close code when the gateway closed the connection (null: open, or closed by the client). */
  readonly closeCode: number | null;
  /** The client's address (for log lines). */
  readonly peer: { readonly address: string };
  /**
   * Handles one client frame; a promise only when the frame waits behind a pending join (it
   * resolves once the frame was dispatched).
   */
  receive(data: Buffer | string, isBinary: boolean): Promise<void> | undefined;
  /** Closes the connection with `code` and ends the session. */
  close(code: number, reason: string): void;
  /** The connection is gone: end the session without writing anything. Idempotent. */
  teardown(): void;
}

/** The outcome of a connect handshake: what to open the session with, or an HTTP refusal. */
export type HandshakeResult<Init> =
  | {
      readonly ok: true;
      readonly init: Init;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | {
      readonly ok: false;
      readonly status: number;
      readonly reason: string;
      readonly headers?: Readonly<Record<string, string>>;
    };

/** The close codes a transport closes sessions with (protocol/phoenix.md §Close codes). */
export interface TransportCloseCodes {
  readonly normal: number;
  readonly idleTimeout: number;
  readonly invalidFrame: number;
  readonly tooLarge: number;
  readonly drain: number;
}

/** The counters a transport moves (the gateway's stats). */
export interface TransportStats {
  invalidFrames: number;
  slowConsumers: number;
  longpollSessions: number;
}

/** The options of a socket mount a transport reads (resolved, defaults applied). */
export interface TransportOptions extends SlowConsumerLimits {
  /** The mount path; a transport serves `<path><transport path>`. */
  readonly path: string;
  readonly maxFrameSize: number;
  readonly subprotocols: readonly string[];
  readonly authToken: boolean;
  readonly websocket: {
    readonly path: string;
    readonly idleTimeoutMs: number;
    readonly compress: boolean;
  } | null;
  readonly longpoll: {
    readonly path: string;
    readonly windowMs: number;
    readonly maxBodyBytes: number;
    readonly maxBatchLines: number;
  } | null;
}

/**
 * What a transport needs from the socket layer: the mount's options, the handshake (origin check
 * and connect pipeline), sessions for accepted connections, the close codes and the gateway's
 * shared parts. `Init` is what an accepted handshake hands back to `createSession`; a transport
 * only passes it on.
 */
export interface TransportHost<Init> {
  readonly options: TransportOptions;
  /** True once the mount stops accepting (a drain): new connections are refused with 503. */
  readonly closed: boolean;
  readonly closeCodes: TransportCloseCodes;
  /** The gateway's logger. */
  readonly logger: Logger;
  readonly wheel: TimerWheel;
  readonly stats: TransportStats;
  /** LongPoll session tokens (shared by every mount of the gateway). */
  readonly tokens: SessionTokens;
  /** The origin check alone: LongPoll applies it to every request, not only the first. */
  originAllowed(req: IncomingMessage): boolean;
  /** The connect pipeline: query, vsn, origin, caps, connect limit, connect hook. */
  authorize(
    req: IncomingMessage,
    transport: TransportName,
    path: string,
    query: string,
    authToken: string | null,
  ): Promise<HandshakeResult<Init>>;
  /** A session for an accepted connection. */
  createSession(connection: Connection, init: Init): TransportSession;
}
