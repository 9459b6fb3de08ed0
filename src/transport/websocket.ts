import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { readSubprotocols } from '../http/subprotocols.js';
import { rejectUpgrade, sendPlain, STOPPING_REFUSAL } from '../http/responses.js';
import { DrainWaiters } from '../util/drain-waiters.js';
import type { TimerEntry } from '../util/timer-wheel.js';
import type { EncodedFrame } from '../wire/serializer.js';
import type { Connection, TransportHost, TransportSession } from './host.js';
import { BacklogWatch, type Backlogged } from './slow-consumer.js';

/** Close reasons are limited to 123 bytes by RFC 6455. */
function closeReason(text: string): string {
  return Buffer.byteLength(text) <= 123
    ? text
    : Buffer.from(text)
        .subarray(0, 120)
        .toString('utf8')
        .replace(/\uFFFD$/, '') + '...';
}

const TEXT = { binary: false } as const;
const BINARY = { binary: true } as const;

/**
 * Connections corked in this turn of the event loop. Frames written to one connection in one turn
 * (a push and its reply, a burst of broadcasts) leave in one write instead of one system call per
 * frame; every corked connection is uncorked once the turn's I/O callbacks are done.
 */
const corked: Duplex[] = [];
let flushScheduled = false;

function uncorkAll(): void {
  flushScheduled = false;
  for (let i = 0; i < corked.length; i++) corked[i]!.uncork();
  corked.length = 0;
}

function corkForThisTurn(socket: Duplex): void {
  if (socket.writableCorked > 0) return;
  socket.cork();
  corked.push(socket);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(uncorkAll);
  }
}

/**
 * Input a connection may deliver before it yields the event loop for a turn: a client sending
 * large frames back to back is read a slice at a time, so the other sockets' frames (a
 * bystander's heartbeat) are read in between. Its bytes are parsed in order, only later.
 */
const INPUT_SLICE_BYTES = 64 * 1024;
/** Why input is held: the session asked (frames queued behind a join), or the slice is spent. */
const HELD_BY_SESSION = 1;
const HELD_FOR_SLICE = 2;

function releaseSlice(connection: WebSocketConnection<unknown>): void {
  connection.releaseSlice();
}

/** Where a live `ws` keeps its connection, for the shared listeners below. */
const CONNECTION = Symbol('gen-gateway.connection');
type ConnectedWebSocket = WebSocket & { [CONNECTION]: WebSocketConnection<unknown> };

function destroySocket(this: Duplex): void {
  this.destroy();
}

function connectionOf(ws: WebSocket): WebSocketConnection<unknown> {
  return (ws as ConnectedWebSocket)[CONNECTION];
}

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  connectionOf(this).onMessage(data as Buffer, isBinary);
}

function onLiveness(this: WebSocket): void {
  connectionOf(this).touch();
}

function onError(this: WebSocket, err: Error & { code?: string }): void {
  connectionOf(this).onError(err);
}

function onClose(this: WebSocket): void {
  connectionOf(this).onClose();
}

/**
 * A WebSocket connection as a session's Connection: sends frames, judges a backlog over time
 * (BacklogWatch), and owns the idle deadline on the shared timer wheel (every inbound frame,
 * ping or pong only refreshes a timestamp).
 */
class WebSocketConnection<Init> implements Connection, TimerEntry, Backlogged {
  readonly transport = 'websocket';
  readonly supportsBinary = true;
  readonly prefersBytes = true;
  timerSlot = -1;
  lastSeen: number;
  session!: TransportSession;
  /** Created on the first backlog over maxBufferedBytes. */
  private watch: BacklogWatch | null = null;
  /** HELD_BY_SESSION | HELD_FOR_SLICE: input resumes when no reason is left. */
  private held = 0;
  /** Input bytes since the connection last yielded a turn. */
  private sliceBytes = 0;
  /** Blocked streams waiting for the send buffer to shrink; created on the first wait. */
  private drainWaiters: DrainWaiters | null = null;
  /** Given with every frame to `ws.send`: runs once the frame has been written out. */
  private readonly frameWritten = (): void => {
    if (this.drainWaiters !== null) this.drainWaiters.drained(this.ws.bufferedAmount);
  };

  constructor(
    private readonly ws: WebSocket,
    /** The TCP socket under `ws` (corked per turn). */
    private readonly raw: Duplex,
    private readonly host: TransportHost<Init>,
  ) {
    this.lastSeen = host.wheel.clock();
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  whenBufferedAtMost(bytes: number, signal: AbortSignal): Promise<void> {
    if (this.ws.bufferedAmount <= bytes || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.resolve();
    }
    return (this.drainWaiters ??= new DrainWaiters()).wait(bytes, signal);
  }

  send(frame: EncodedFrame, textBytes?: Buffer): void {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    corkForThisTurn(this.raw);
    if (textBytes !== undefined) ws.send(textBytes, TEXT, this.frameWritten);
    else if (typeof frame === 'string') ws.send(frame, TEXT, this.frameWritten);
    else ws.send(frame, BINARY, this.frameWritten);
    const watch = this.watch;
    if (watch !== null) {
      watch.wrote(
        textBytes !== undefined
          ? textBytes.length
          : typeof frame === 'string'
            ? Buffer.byteLength(frame)
            : frame.length,
      );
    }
    if (ws.bufferedAmount > this.host.options.maxBufferedBytes) this.flushAndCheck();
  }

  /**
   * Past the limit while corked, the frames may only be waiting for the end of the turn: flush
   * them to the kernel now; what the kernel would not take is a backlog, judged over time.
   */
  private flushAndCheck(): void {
    const raw = this.raw;
    while (raw.writableCorked > 0) raw.uncork();
    const buffered = this.ws.bufferedAmount;
    if (buffered <= this.host.options.maxBufferedBytes) return;
    const { options, wheel } = this.host;
    (this.watch ??= new BacklogWatch(wheel, options, this)).over(buffered);
  }

  close(code: number, reason: string): void {
    this.host.wheel.cancel(this);
    this.watch?.stop();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, closeReason(reason));
    }
  }

  pauseInput(): void {
    this.hold(HELD_BY_SESSION);
  }

  resumeInput(): void {
    this.release(HELD_BY_SESSION);
  }

  /** @internal The turn after the slice was spent: read again. */
  releaseSlice(): void {
    this.sliceBytes = 0;
    this.release(HELD_FOR_SLICE);
  }

  private hold(reason: number): void {
    if (this.held === 0) this.ws.pause();
    this.held |= reason;
  }

  private release(reason: number): void {
    if ((this.held & reason) === 0) return;
    this.held &= ~reason;
    if (this.held === 0) this.ws.resume();
  }

  touch(): void {
    this.lastSeen = this.host.wheel.clock();
  }

  scheduleIdle(): void {
    this.host.wheel.schedule(this, this.lastSeen + this.host.options.websocket!.idleTimeoutMs);
  }

  onTimer(now: number): void {
    if (this.session.closed) return;
    const idleMs = this.host.options.websocket!.idleTimeoutMs;
    if (now - this.lastSeen >= idleMs) {
      this.host.logger.info({ peer: this.session.peer.address, idleMs }, 'websocket idle timeout');
      this.session.close(this.host.closeCodes.idleTimeout, 'idle timeout');
    } else {
      this.scheduleIdle();
    }
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    this.touch();
    this.sliceBytes += data.length;
    if (this.sliceBytes > INPUT_SLICE_BYTES && (this.held & HELD_FOR_SLICE) === 0) {
      this.hold(HELD_FOR_SLICE);
      setImmediate(releaseSlice, this);
    }
    this.session.receive(data, isBinary)?.catch((err: unknown) => {
      // A frame queued behind a join failed to dispatch: the session's order is lost, so end it
      // as for any internal failure (1011).
      this.host.logger.error(
        { err, peer: this.session.peer.address },
        'frame dispatch failed, closing',
      );
      this.session.close(this.host.closeCodes.invalidFrame, 'internal error');
    });
  }

  onError(err: Error & { code?: string }): void {
    // ws closes the connection itself on these (1009 oversize, 1007 bad UTF-8, 1002 framing).
    if (err.code?.startsWith('WS_ERR_')) this.host.stats.invalidFrames++;
    this.host.logger.info(
      { err: err.message, code: err.code, peer: this.session.peer.address },
      'websocket error',
    );
  }

  onClose(): void {
    this.host.wheel.cancel(this);
    this.watch?.stop();
    this.drainWaiters?.releaseAll();
    this.session.teardown();
  }

  /** The client does not take what is written to it: drop it rather than the process's memory. */
  slowConsumer(why: 'grace' | 'hard'): void {
    const { options } = this.host;
    this.host.stats.slowConsumers++;
    this.host.logger.warn(
      {
        peer: this.session?.peer.address,
        buffered: this.ws.bufferedAmount,
        limit: why === 'hard' ? options.maxBufferedBytesHard : options.maxBufferedBytes,
        graceMs: options.slowConsumerGraceMs,
      },
      why === 'hard'
        ? 'slow consumer: send buffer over maxBufferedBytesHard, connection terminated'
        : 'slow consumer: backlog over maxBufferedBytes not taken within slowConsumerGraceMs, connection terminated',
    );
    this.host.wheel.cancel(this);
    this.watch?.stop();
    this.ws.terminate();
    this.session?.teardown();
  }
}

/** Serves `<mount>/websocket`: the Phoenix handshake rules, then one Session per connection. */
export class WebSocketTransport<Init> {
  readonly path: string;
  private readonly server: WebSocketServer;
  private readonly selectedProtocol = new WeakMap<IncomingMessage, string>();
  private readonly extraHeaders = new WeakMap<IncomingMessage, Readonly<Record<string, string>>>();

  constructor(private readonly host: TransportHost<Init>) {
    const options = host.options.websocket!;
    this.path = host.options.path + options.path;
    this.server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: host.options.maxFrameSize,
      perMessageDeflate: options.compress,
      // Not in @types/ws yet: how long a close handshake may take before the socket is destroyed.
      ...({ closeTimeout: 5_000 } as object),
      handleProtocols: (_offers, req) => this.selectedProtocol.get(req) ?? false,
    });
    this.server.on('headers', (headers: string[], req: IncomingMessage) => {
      const extra = this.extraHeaders.get(req);
      if (extra)
        for (const [name, value] of Object.entries(extra)) headers.push(`${name}: ${value}`);
    });
  }

  /** A plain HTTP request to the WebSocket path: Phoenix answers 400. */
  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET') {
      sendPlain(res, 400, '');
      return;
    }
    const connection = req.headers.connection ?? '';
    sendPlain(
      res,
      400,
      `'connection' header must contain 'upgrade', got ${JSON.stringify(connection.split(/,\s*/))}`,
    );
  }

  async handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    query: string,
  ): Promise<void> {
    socket.on('error', destroySocket);
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      rejectUpgrade(socket, 400);
      return;
    }
    if (this.host.closed) {
      // Stopping (a drain): no connect hook runs; the client tries again, elsewhere.
      rejectUpgrade(socket, 503, {}, STOPPING_REFUSAL);
      return;
    }
    const { options } = this.host;
    const offer = readSubprotocols(
      req.headers['sec-websocket-protocol'],
      options.subprotocols,
      options.authToken,
    );
    if (offer.rejected) {
      rejectUpgrade(socket, 403);
      return;
    }
    const result = await this.host.authorize(req, 'websocket', this.path, query, offer.authToken);
    if (!result.ok) {
      this.host.logger.info(
        { status: result.status, reason: result.reason, transport: 'websocket' },
        'connection refused',
      );
      rejectUpgrade(socket, result.status, result.headers);
      return;
    }
    if (socket.destroyed || this.host.closed) {
      if (!socket.destroyed) rejectUpgrade(socket, 503, {}, STOPPING_REFUSAL);
      return;
    }
    if (offer.selected !== null) this.selectedProtocol.set(req, offer.selected);
    if (result.headers) this.extraHeaders.set(req, result.headers);
    this.upgrade(req, socket, head, result.init);
  }

  /**
   * Hands the socket to `ws`. Its own function, not a closure in handleUpgrade: a closure there
   * would share handleUpgrade's context, which the listeners of a live connection keep alive.
   */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, init: Init): void {
    this.server.handleUpgrade(req, socket, head, (ws) => this.attach(ws, socket, init));
  }

  private attach(ws: WebSocket, raw: Duplex, init: Init): void {
    const connection = new WebSocketConnection(ws, raw, this.host);
    const session = this.host.createSession(connection, init);
    connection.session = session;
    connection.scheduleIdle();
    // Module-level listeners that find the connection on the ws: no closures per connection.
    (ws as ConnectedWebSocket)[CONNECTION] = connection;
    ws.on('message', onMessage);
    ws.on('ping', onLiveness);
    ws.on('pong', onLiveness);
    ws.on('error', onError);
    ws.on('close', onClose);
  }

  close(): void {
    this.server.close();
  }
}
