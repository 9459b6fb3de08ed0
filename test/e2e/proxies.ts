/**
 * Protocol-aware proxies between the real `phoenix` client and the gateway, for the end-to-end
 * cases where the server must seem to misbehave while the gateway itself stays correct:
 * - `WsFrameProxy` relays WebSocket frames and can withhold heartbeats on the connections open now
 *   (a server that stopped answering them), recording what the client sent and how it closed;
 * - `HttpProxy` relays LongPoll requests and can hold GETs back (a client that stopped polling,
 *   e.g. a frozen tab), recording every request and response.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer, type RawData } from 'ws';

/** A ws message's bytes as UTF-8 text (a Buffer, an ArrayBuffer or fragments). */
function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** A frame seen by the proxy: `up` from the client to the server, `down` back. */
export interface SeenFrame {
  readonly at: number;
  readonly connection: number;
  readonly dir: 'up' | 'down';
  readonly frame: unknown;
  readonly dropped: boolean;
}

export interface SeenClose {
  readonly at: number;
  readonly connection: number;
  readonly code: number;
  readonly reason: string;
}

interface Link {
  readonly id: number;
  readonly openedAt: number;
  readonly client: WebSocket;
  readonly upstream: WebSocket;
  withholdHeartbeats: boolean;
}

/** Codes a WebSocket endpoint may send in a close frame (1005/1006/1015 are local-only). */
const sendable = (code: number) => code !== 1005 && code !== 1006 && code !== 1015;

export class WsFrameProxy {
  readonly frames: SeenFrame[] = [];
  /** Close frames the client sent (who closed, with which code and reason). */
  readonly clientCloses: SeenClose[] = [];
  /** When each client connection was opened, by connection id (1, 2, …). */
  readonly opened: { id: number; at: number }[] = [];
  private readonly links = new Set<Link>();
  private readonly selected = new WeakMap<IncomingMessage, string>();
  private readonly http = createServer();
  private readonly wss: WebSocketServer;
  private nextId = 1;
  port = 0;

  private constructor(private readonly targetPort: number) {
    this.wss = new WebSocketServer({
      noServer: true,
      handleProtocols: (_offered, req) => this.selected.get(req) ?? false,
    });
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(req, socket, head),
    );
  }

  static async start(targetPort: number): Promise<WsFrameProxy> {
    const proxy = new WsFrameProxy(targetPort);
    proxy.port = await listen(proxy.http);
    return proxy;
  }

  /** The connections open now stop relaying the client's heartbeats (new ones relay them). */
  withholdHeartbeats(): number {
    for (const link of this.links) link.withholdHeartbeats = true;
    return this.links.size;
  }

  /** Client heartbeats seen (relayed or withheld), in order. */
  heartbeats(): SeenFrame[] {
    return this.frames.filter(
      (f) =>
        f.dir === 'up' &&
        Array.isArray(f.frame) &&
        f.frame[2] === 'phoenix' &&
        f.frame[3] === 'heartbeat',
    );
  }

  /** Server replies on topic "phoenix" (heartbeat replies), in order. */
  heartbeatReplies(): SeenFrame[] {
    return this.frames.filter(
      (f) =>
        f.dir === 'down' &&
        Array.isArray(f.frame) &&
        f.frame[2] === 'phoenix' &&
        f.frame[3] === 'phx_reply',
    );
  }

  /** Connects upstream first, so the client gets the server's answer (status or subprotocol). */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const offered = req.headers['sec-websocket-protocol'];
    const protocols = offered ? offered.split(',').map((p) => p.trim()) : [];
    const upstream = new WebSocket(`ws://127.0.0.1:${this.targetPort}${req.url ?? '/'}`, protocols);
    upstream.once('unexpected-response', (_r, res) => {
      socket.end(
        `HTTP/1.1 ${res.statusCode ?? 502} Upstream Refused\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
      upstream.terminate();
    });
    upstream.once('error', () => socket.destroy());
    upstream.once('open', () => {
      if (upstream.protocol) this.selected.set(req, upstream.protocol);
      this.wss.handleUpgrade(req, socket, head, (client) => this.link(client, upstream));
    });
  }

  private link(client: WebSocket, upstream: WebSocket): void {
    const link: Link = {
      id: this.nextId++,
      openedAt: Date.now(),
      client,
      upstream,
      withholdHeartbeats: false,
    };
    this.links.add(link);
    this.opened.push({ id: link.id, at: link.openedAt });
    const record = (dir: 'up' | 'down', data: RawData, isBinary: boolean, dropped: boolean) => {
      let frame: unknown = data;
      if (!isBinary) {
        const text = rawText(data);
        try {
          frame = JSON.parse(text);
        } catch {
          frame = text;
        }
      }
      this.frames.push({ at: Date.now(), connection: link.id, dir, frame, dropped });
      return frame;
    };
    client.on('message', (data: RawData, isBinary: boolean) => {
      const frame = record('up', data, isBinary, false);
      const heartbeat = Array.isArray(frame) && frame[2] === 'phoenix' && frame[3] === 'heartbeat';
      if (heartbeat && link.withholdHeartbeats) {
        (this.frames[this.frames.length - 1] as { dropped: boolean }).dropped = true;
        return;
      }
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary });
    });
    upstream.on('message', (data: RawData, isBinary: boolean) => {
      record('down', data, isBinary, false);
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    });
    client.on('close', (code: number, reason: Buffer) => {
      this.clientCloses.push({
        at: Date.now(),
        connection: link.id,
        code,
        reason: reason.toString(),
      });
      this.links.delete(link);
      if (upstream.readyState === WebSocket.OPEN)
        upstream.close(sendable(code) ? code : 1000, reason);
      else upstream.terminate();
    });
    upstream.on('close', (code: number, reason: Buffer) => {
      this.links.delete(link);
      if (client.readyState !== WebSocket.OPEN) return;
      if (sendable(code)) client.close(code, reason);
      else client.terminate();
    });
    client.on('error', () => upstream.terminate());
    upstream.on('error', () => client.terminate());
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.links) {
      client.terminate();
      upstream.terminate();
    }
    this.links.clear();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

export interface SeenRequest {
  readonly at: number;
  readonly method: string;
  readonly url: string;
  readonly body: string;
  /** Filled in when the server answered. */
  response?: { status: number; body: string; at: number };
}

/** A plain HTTP relay for LongPoll that can hold GETs back until `release()`. */
export class HttpProxy {
  readonly requests: SeenRequest[] = [];
  /** While true, GETs wait at the proxy: the server sees no poll. */
  holdGets = false;
  private held: (() => void)[] = [];
  private readonly http: Server;
  port = 0;

  private constructor(private readonly targetPort: number) {
    this.http = createServer((req, res) => {
      this.handle(req, res).catch(() => res.destroy());
    });
  }

  static async start(targetPort: number): Promise<HttpProxy> {
    const proxy = new HttpProxy(targetPort);
    proxy.port = await listen(proxy.http);
    return proxy;
  }

  /** GETs currently held. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Stops holding and forwards every held GET, in order (except those the client gave up on). */
  release(): void {
    this.holdGets = false;
    for (const forward of this.held.splice(0)) forward();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const seen: SeenRequest = {
      at: Date.now(),
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      body: body.toString(),
    };
    this.requests.push(seen);
    if (req.method === 'GET' && this.holdGets) {
      let abandoned = false;
      res.once('close', () => (abandoned = true));
      this.held.push(() => {
        if (!abandoned) this.forward(req, res, body, seen);
      });
    } else {
      this.forward(req, res, body, seen);
    }
  }

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    seen: SeenRequest,
  ): void {
    const headers = { ...req.headers, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    const upstream = httpRequest(
      {
        host: '127.0.0.1',
        port: this.targetPort,
        method: req.method,
        path: req.url,
        headers,
        agent: false,
      },
      (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => parts.push(chunk));
        answer.on('end', () => {
          const text = Buffer.concat(parts);
          seen.response = { status: answer.statusCode ?? 0, body: text.toString(), at: Date.now() };
          if (res.destroyed || res.headersSent) return;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          res.end(text);
        });
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent && !res.destroyed) res.writeHead(502).end();
    });
    upstream.end(body);
  }

  /** Requests whose JSON response body had this LongPoll `status`. */
  answered(method: string, status: number): SeenRequest[] {
    return this.requests.filter((r) => {
      if (r.method !== method || !r.response || r.response.body === '') return false;
      try {
        return (JSON.parse(r.response.body) as { status?: number }).status === status;
      } catch {
        return false;
      }
    });
  }

  async close(): Promise<void> {
    this.held = [];
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}
