import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import { realTime, WAIT_MS } from './wait.js';

export type Frame = unknown[] | Record<string, unknown> | Buffer;

export interface CloseInfo {
  code: number;
  reason: string;
}

/**
 * A raw WebSocket test client: sends frames as given and queues every frame it receives (JSON
 * text parsed, binary as Buffer), so tests can assert exact sequences.
 */
export class RawClient {
  readonly frames: Frame[] = [];
  readonly texts: string[] = [];
  readonly closed: Promise<CloseInfo>;
  private waiters: ((frame: Frame) => void)[] = [];
  private markers = 0;

  /**
   * Stops reading from the TCP socket (the kernel buffers fill, then the server's writes queue):
   * a client that does not take what it is sent. `resumeReading` reads again.
   */
  pauseReading(): void {
    this.tcp().pause();
  }

  resumeReading(): void {
    this.tcp().resume();
  }

  /** ws's TCP socket (a private field of ws). */
  private tcp(): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket;
  }

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('message', (data: Buffer, isBinary) => {
      let frame: Frame;
      if (isBinary) frame = data;
      else {
        const text = data.toString('utf8');
        this.texts.push(text);
        frame = JSON.parse(text) as Frame;
      }
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame);
      else this.frames.push(frame);
    });
    ws.on('error', () => {});
  }

  static async connect(
    url: string,
    options: { protocols?: string[]; headers?: Record<string, string> } = {},
  ): Promise<RawClient> {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers });
    const client = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`unexpected HTTP ${res.statusCode}`)),
      );
    });
    return client;
  }

  /**
   * Sends a raw HTTP upgrade request (any headers, no client-side validation) and reports the
   * status (101 when it upgraded), the response headers and body.
   */
  static async handshake(
    url: string,
    options: { protocols?: string[]; headers?: Record<string, string>; method?: string } = {},
  ): Promise<{
    status: number;
    protocol: string | undefined;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }> {
    const target = new URL(url.replace(/^ws/, 'http'));
    const headers: Record<string, string> = {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': randomBytes(16).toString('base64'),
      ...(options.protocols ? { 'sec-websocket-protocol': options.protocols.join(',') } : {}),
      ...options.headers,
    };
    return new Promise((resolve, reject) => {
      const req = httpRequest({
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: options.method ?? 'GET',
        headers,
      });
      req.once('upgrade', (res, socket) => {
        socket.destroy();
        const protocol = res.headers['sec-websocket-protocol'];
        resolve({
          status: res.statusCode ?? 0,
          protocol: typeof protocol === 'string' ? protocol : undefined,
          headers: res.headers,
          body: '',
        });
      });
      req.once('response', (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, protocol: undefined, headers: res.headers, body }),
        );
      });
      req.once('error', reject);
      req.end();
    });
  }

  send(frame: unknown[] | Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendText(text: string): void {
    this.ws.send(text);
  }

  sendBinary(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  /** The next frame, waiting up to `timeoutMs` (default 10 s, a deadline, not a speed check). */
  next(timeoutMs = WAIT_MS): Promise<Frame> {
    const queued = this.frames.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (frame: Frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.waiters.push(waiter);
    });
  }

  /** The next `count` frames. */
  async take(count: number, timeoutMs = WAIT_MS): Promise<Frame[]> {
    const out: Frame[] = [];
    for (let i = 0; i < count; i++) out.push(await this.next(timeoutMs));
    return out;
  }

  /**
   * Asserts no frame arrives for `ms` (the spec's "nothing": ~300 ms), in real time. Prefer
   * `quiet()` where the frame that must not come would be sent while handling an earlier frame.
   */
  async nothing(ms = 300): Promise<void> {
    await realTime(ms, 'a span in which the gateway must send this client nothing');
    if (this.frames.length > 0)
      throw new Error(`expected nothing, got ${JSON.stringify(this.frames[0])}`);
  }

  /**
   * Asserts the gateway sent nothing before answering a marker heartbeat sent now: it handles a
   * connection's frames in order, so whatever an earlier frame made it send would come first.
   * `v1` for a V1 (object) client.
   */
  async quiet(options: { v1?: boolean } = {}): Promise<void> {
    const ref = `quiet-${++this.markers}`;
    const ok = { status: 'ok', response: {} };
    const [marker, reply] = options.v1
      ? [
          { topic: 'phoenix', event: 'heartbeat', payload: {}, ref },
          { topic: 'phoenix', event: 'phx_reply', payload: ok, ref },
        ]
      : [
          [null, ref, 'phoenix', 'heartbeat', {}],
          [null, ref, 'phoenix', 'phx_reply', ok],
        ];
    const frame = await this.request(marker);
    if (!isDeepStrictEqual(frame, reply))
      throw new Error(`expected nothing before the marker reply, got ${JSON.stringify(frame)}`);
  }

  /** Sends a frame and returns the next frame. */
  async request(frame: unknown[] | Record<string, unknown>, timeoutMs?: number): Promise<Frame> {
    this.send(frame);
    return this.next(timeoutMs);
  }

  /** Joins `topic` with join_ref = ref = `joinRef` and returns the reply. */
  async join(topic: string, joinRef: string, payload: unknown = {}): Promise<Frame> {
    return this.request([joinRef, joinRef, topic, 'phx_join', payload]);
  }

  close(): void {
    this.ws.close();
  }
}

export function bytes(...parts: (number[] | string)[]): Buffer {
  return Buffer.concat(
    parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part))),
  );
}
