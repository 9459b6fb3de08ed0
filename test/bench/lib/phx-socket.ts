/**
 * A lean Phoenix V2 JSON client for load generation: one `ws` socket, one joined topic, frames
 * `[join_ref, ref, topic, event, payload]`, replies matched by ref. Far cheaper than the `phoenix`
 * client (no timers per push), so a generator process can drive thousands of sockets.
 */
import { randomBytes } from 'node:crypto';
import type { Socket as NetSocket } from 'node:net';
import WebSocket from 'ws';

export type Frame = [string | null, string | null, string, string, unknown];

export interface ReplyPayload {
  status: string;
  response: unknown;
}

export interface SocketOptions {
  /** Local (source) address, to spread sockets over 127.0.0.x (ephemeral port limits). */
  localAddress?: string;
  connectTimeoutMs?: number;
}

export class PhxSocket {
  private nextRef = 1;
  private readonly replies = new Map<string, (reply: ReplyPayload) => void>();
  joinRef: string | null = null;
  topic = '';
  /** Pushes from the server (not replies). */
  onPush: ((topic: string, event: string, payload: unknown) => void) | null = null;
  closed = false;
  closeCode: number | null = null;
  /** In raw-sink mode (see `rawSink`): bytes are counted, nothing is parsed. */
  private raw = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as Frame;
      const [, ref, topic, event, payload] = frame;
      if (event === 'phx_reply' && ref !== null) {
        const waiter = this.replies.get(ref);
        if (waiter) {
          this.replies.delete(ref);
          waiter(payload as ReplyPayload);
        }
        return;
      }
      this.onPush?.(topic, event, payload);
    });
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      for (const waiter of this.replies.values()) waiter({ status: 'closed', response: { code } });
      this.replies.clear();
    });
    ws.on('error', () => undefined);
  }

  static connect(url: string, options: SocketOptions = {}): Promise<PhxSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        handshakeTimeout: options.connectTimeoutMs ?? 10_000,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      });
      const fail = (err: Error) => {
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        reject(err);
      };
      ws.once('open', () => {
        ws.off('error', fail);
        resolve(new PhxSocket(ws));
      });
      ws.once('error', fail);
      ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  private ref(): string {
    return String(this.nextRef++);
  }

  /** Sends a frame; `onReply` gets the phx_reply for it. Returns the ref. */
  send(
    topic: string,
    event: string,
    payload: unknown,
    onReply?: (reply: ReplyPayload) => void,
  ): string {
    const ref = this.ref();
    if (onReply) this.replies.set(ref, onReply);
    if (!this.closed) this.ws.send(JSON.stringify([this.joinRef, ref, topic, event, payload]));
    else onReply?.({ status: 'closed', response: null });
    return ref;
  }

  join(topic: string, payload: unknown = {}): Promise<ReplyPayload> {
    return new Promise((resolve) => {
      const ref = this.ref();
      this.joinRef = ref;
      this.topic = topic;
      this.replies.set(ref, resolve);
      this.ws.send(JSON.stringify([ref, ref, topic, 'phx_join', payload]));
    });
  }

  push(event: string, payload: unknown, onReply?: (reply: ReplyPayload) => void): string {
    return this.send(this.topic, event, payload, onReply);
  }

  /**
   * From now on the server's bytes are only counted, never parsed (frames, replies, pings): a
   * receive-only subscriber that costs its process as little as any client can, like a client on
   * another machine. It reaches into `ws`'s socket; the socket can then only be terminated.
   */
  rawSink(onBytes: (bytes: number) => void): void {
    const socket = (this.ws as unknown as { _socket: NetSocket })._socket;
    socket.removeAllListeners('data');
    socket.on('data', (chunk: Buffer) => onBytes(chunk.length));
    this.raw = true;
  }

  /**
   * Sends a pre-encoded text frame (`[join_ref, ref, topic, event, payload]`, its `ref` given) and
   * resolves with the phx_reply for that ref (parsed as usual: for calibration before `rawSink`).
   */
  request(text: string, ref: string): Promise<ReplyPayload> {
    return new Promise((resolve) => {
      this.replies.set(ref, resolve);
      this.ws.send(text);
    });
  }

  /**
   * Counts the bytes the server sends (`onBytes` per chunk) while `ws` still parses them: what a
   * reply costs on the wire, measured before the socket turns `rawSink`.
   */
  tapBytes(onBytes: (bytes: number) => void): () => void {
    const socket = (this.ws as unknown as { _socket: NetSocket })._socket;
    const listener = (chunk: Buffer) => onBytes(chunk.length);
    socket.prependListener('data', listener);
    return () => void socket.off('data', listener);
  }

  /** Writes bytes as they are to the socket (a frame from `clientTextFrame`), bypassing `ws`. */
  writeRaw(bytes: Buffer): void {
    if (!this.closed) (this.ws as unknown as { _socket: NetSocket })._socket.write(bytes);
  }

  heartbeat(): void {
    if (!this.closed) this.ws.send(`[null,"${this.ref()}","phoenix","heartbeat",{}]`);
  }

  leave(): Promise<ReplyPayload> {
    return new Promise((resolve) => this.send(this.topic, 'phx_leave', {}, resolve));
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.raw) {
      this.ws.terminate();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
      setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 2_000).unref();
    });
  }
}

/**
 * A masked client text frame (RFC 6455 §5.2) holding `text`, encoded once so that a load
 * generator can send it again and again at the cost of a socket write. The masking key is random
 * but fixed for the frame: the server cannot tell.
 */
export function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.alloc(header + 4 + length);
  frame[0] = 0x81; // FIN, text
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 65_536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, header);
  for (let i = 0; i < length; i++) frame[header + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

/** Runs `task` for each index with at most `limit` in flight. */
export async function pool(
  count: number,
  limit: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) await task(next++);
  });
  await Promise.all(lanes);
}
