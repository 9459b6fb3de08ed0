import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { Assigns } from '../channel/types.js';
import { readSubprotocols } from '../http/subprotocols.js';
import { rejectUpgrade, sendPlain } from '../http/responses.js';
import type { TimerEntry } from '../util/timer-wheel.js';
import type { EncodedFrame } from '../wire/serializer.js';
import { authorize } from '../socket/handshake.js';
import { CLOSE, type Connection, type Session } from '../socket/session.js';
import type { SocketMount } from '../socket/mount.js';

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

/** Where a live `ws` keeps its connection, for the shared listeners below. */
const CONNECTION = Symbol('gen-gateway.connection');
type ConnectedWebSocket = WebSocket & { [CONNECTION]: WebSocketConnection<Assigns> };

function destroySocket(this: Duplex): void {
  this.destroy();
}

function connectionOf(ws: WebSocket): WebSocketConnection<Assigns> {
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
 * A WebSocket connection as a session's Connection: sends frames, enforces the slow-consumer
 * limit after each write, and owns the idle deadline on the shared timer wheel (every inbound
 * frame, ping or pong only refreshes a timestamp).
 */
class WebSocketConnection<A extends Assigns> implements Connection, TimerEntry {
  readonly transport = 'websocket';
  readonly supportsBinary = true;
  readonly prefersBytes = true;
  timerSlot = -1;
  lastSeen: number;
  session!: Session<A>;

  constructor(
    private readonly ws: WebSocket,
    /** The TCP socket under `ws` (corked per turn). */
    private readonly raw: Duplex,
    private readonly mount: SocketMount<A>,
  ) {
    this.lastSeen = mount.gateway.wheel.clock();
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  send(frame: EncodedFrame, textBytes?: Buffer): void {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    corkForThisTurn(this.raw);
    if (textBytes !== undefined) ws.send(textBytes, TEXT);
    else if (typeof frame === 'string') ws.send(frame, TEXT);
    else ws.send(frame, BINARY);
    if (ws.bufferedAmount > this.mount.options.maxBufferedBytes) this.flushAndCheck();
  }

  /**
   * Past the limit while corked, the frames may only be waiting for the end of the turn: flush
   * them to the kernel now, and drop the client only if more than the limit is still queued (what
   * the kernel would not take). A client that reads keeps up however much one turn writes.
   */
  private flushAndCheck(): void {
    const raw = this.raw;
    while (raw.writableCorked > 0) raw.uncork();
    if (this.ws.bufferedAmount > this.mount.options.maxBufferedBytes) this.slowConsumer();
  }

  close(code: number, reason: string): void {
    this.mount.gateway.wheel.cancel(this);
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, closeReason(reason));
    }
  }

  pauseInput(): void {
    this.ws.pause();
  }

  resumeInput(): void {
    this.ws.resume();
  }

  touch(): void {
    this.lastSeen = this.mount.gateway.wheel.clock();
  }

  scheduleIdle(): void {
    this.mount.gateway.wheel.schedule(
      this,
      this.lastSeen + this.mount.options.websocket!.idleTimeoutMs,
    );
  }

  onTimer(now: number): void {
    if (this.session.closed) return;
    const idleMs = this.mount.options.websocket!.idleTimeoutMs;
    if (now - this.lastSeen >= idleMs) {
      this.mount.gateway.logger.info(
        { peer: this.session.peer.address, idleMs },
        'websocket idle timeout',
      );
      this.session.close(CLOSE.idleTimeout, 'idle timeout');
    } else {
      this.scheduleIdle();
    }
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    this.touch();
    this.session.receive(data, isBinary)?.catch((err: unknown) => {
      // A frame queued behind a join failed to dispatch: the session's order is lost, so end it
      // as for any internal failure (1011).
      this.mount.gateway.logger.error(
        { err, peer: this.session.peer.address },
        'frame dispatch failed, closing',
      );
      this.session.close(CLOSE.invalidFrame, 'internal error');
    });
  }

  onError(err: Error & { code?: string }): void {
    // ws closes the connection itself on these (1009 oversize, 1007 bad UTF-8, 1002 framing).
    if (err.code?.startsWith('WS_ERR_')) this.mount.gateway.stats.invalidFrames++;
    this.mount.gateway.logger.info(
      { err: err.message, code: err.code, peer: this.session.peer.address },
      'websocket error',
    );
  }

  onClose(): void {
    this.mount.gateway.wheel.cancel(this);
    this.session.teardown();
  }

  /** Writing faster than the client reads: drop the connection rather than the process's memory. */
  private slowConsumer(): void {
    this.mount.gateway.stats.slowConsumers++;
    this.mount.gateway.logger.warn(
      {
        peer: this.session?.peer.address,
        buffered: this.ws.bufferedAmount,
        limit: this.mount.options.maxBufferedBytes,
      },
      'slow consumer: send buffer over maxBufferedBytes, connection terminated',
    );
    this.mount.gateway.wheel.cancel(this);
    this.ws.terminate();
    this.session?.teardown();
  }
}

/** Serves `<mount>/websocket`: the Phoenix handshake rules, then one Session per connection. */
export class WebSocketTransport<A extends Assigns> {
  readonly path: string;
  private readonly server: WebSocketServer;
  private readonly selectedProtocol = new WeakMap<IncomingMessage, string>();
  private readonly extraHeaders = new WeakMap<IncomingMessage, Readonly<Record<string, string>>>();

  constructor(private readonly mount: SocketMount<A>) {
    const options = mount.options.websocket!;
    this.path = mount.options.path + options.path;
    this.server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: mount.options.maxFrameSize,
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
    const { options } = this.mount;
    const offer = readSubprotocols(
      req.headers['sec-websocket-protocol'],
      options.subprotocols,
      options.authToken,
    );
    if (offer.rejected) {
      rejectUpgrade(socket, 403);
      return;
    }
    const result = await authorize(this.mount, req, 'websocket', this.path, query, offer.authToken);
    if (!result.ok) {
      this.mount.gateway.logger.info(
        { status: result.status, reason: result.reason, transport: 'websocket' },
        'connection refused',
      );
      rejectUpgrade(socket, result.status, result.headers);
      return;
    }
    if (socket.destroyed || this.mount.closed) {
      if (!socket.destroyed) rejectUpgrade(socket, 503);
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
  private upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    init: Parameters<SocketMount<A>['createSession']>[1],
  ): void {
    this.server.handleUpgrade(req, socket, head, (ws) => this.attach(ws, socket, init));
  }

  private attach(
    ws: WebSocket,
    raw: Duplex,
    init: Parameters<SocketMount<A>['createSession']>[1],
  ): void {
    const connection = new WebSocketConnection(ws, raw, this.mount);
    const session = this.mount.createSession(connection, init);
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
