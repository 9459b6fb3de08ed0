/**
 * A gen_api test client over a raw WebSocket (Phoenix V2 JSON frames) that demultiplexes what it
 * receives: the pushes on the gen_api event by request_id, the phx_replies by ref, each with its
 * arrival time. Unlike RawClient (which checks exact frame sequences) it lets tests run many
 * requests and streams at once and assert per request; `pause()`/`resume()` stop and restart
 * reading the socket (a slow client).
 */
import WebSocket from 'ws';
import { WAIT_MS } from './wait.js';

export interface ApiResponse {
  request_id: unknown;
  result: unknown;
  success: boolean;
  error: unknown;
  async: boolean;
  has_more: boolean;
  can_retry: boolean;
}

export interface ReplyPayload {
  status: string;
  response: unknown;
}

export interface Received {
  readonly at: number;
  readonly frame: unknown[];
}

export const GEN_API_EVENT = 'phoenix_gen_api';
export const CANCEL_EVENT = 'phoenix_gen_api_cancel';

export class ApiClient {
  readonly received: Received[] = [];
  /** Pushes on the gen_api event by String(request_id), in arrival order. */
  private readonly byRequest = new Map<string, { at: number; payload: ApiResponse }[]>();
  private readonly byRef = new Map<string, { at: number; payload: ReplyPayload }[]>();
  private readonly listeners = new Set<() => void>();
  private ref = 1;
  readonly closed: Promise<void>;
  /** Bytes of text frames received (what the client has read off the socket). */
  bytesRead = 0;

  private constructor(
    readonly ws: WebSocket,
    readonly topic: string,
    readonly joinRef: string,
  ) {
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) return;
      this.bytesRead += data.length;
      const frame = JSON.parse(data.toString('utf8')) as unknown[];
      const at = performance.now();
      this.received.push({ at, frame });
      const [, ref, , event, payload] = frame as [unknown, unknown, string, string, unknown];
      if (event === GEN_API_EVENT && payload !== null && typeof payload === 'object') {
        const response = payload as ApiResponse;
        const key = String(response.request_id);
        let list = this.byRequest.get(key);
        if (!list) this.byRequest.set(key, (list = []));
        list.push({ at, payload: response });
      } else if (event === 'phx_reply' && typeof ref === 'string') {
        let list = this.byRef.get(ref);
        if (!list) this.byRef.set(ref, (list = []));
        list.push({ at, payload: payload as ReplyPayload });
      }
      for (const listener of [...this.listeners]) listener();
    });
    ws.on('error', () => {});
  }

  /** Connects (vsn 2.0.0 JSON) and joins `topic`. */
  static async connect(url: string, topic = 'gen_api:lobby'): Promise<ApiClient> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`unexpected HTTP ${res.statusCode}`)),
      );
    });
    const client = new ApiClient(ws, topic, '1');
    client.ws.send(JSON.stringify(['1', '1', topic, 'phx_join', {}]));
    const joined = await client.reply('1');
    if (joined.status !== 'ok') throw new Error(`join refused: ${JSON.stringify(joined)}`);
    return client;
  }

  /** Sends `event` with `payload` on the joined topic; returns the message ref. */
  send(event: string, payload: unknown): string {
    const ref = String(++this.ref);
    this.ws.send(JSON.stringify([this.joinRef, ref, this.topic, event, payload]));
    return ref;
  }

  /** Sends a gen_api request; returns its ref. */
  call(request: Record<string, unknown>): string {
    return this.send(GEN_API_EVENT, request);
  }

  /** Pushes the cancel event for `requestId`; returns its ref. */
  cancel(requestId: unknown): string {
    return this.send(CANCEL_EVENT, { request_id: requestId });
  }

  /** Leaves the channel (phx_leave); returns its ref. */
  leave(): string {
    return this.send('phx_leave', {});
  }

  pushes(requestId: unknown): ApiResponse[] {
    return (this.byRequest.get(String(requestId)) ?? []).map((p) => p.payload);
  }

  pushTimes(requestId: unknown): number[] {
    return (this.byRequest.get(String(requestId)) ?? []).map((p) => p.at);
  }

  replies(ref: string): ReplyPayload[] {
    return (this.byRef.get(ref) ?? []).map((r) => r.payload);
  }

  replyTime(ref: string): number | undefined {
    return this.byRef.get(ref)?.[0]?.at;
  }

  /** Waits (event-driven) until `probe` returns a value other than undefined/null/false. */
  until<T>(
    probe: () => T | undefined | null | false,
    label: string,
    timeoutMs = WAIT_MS,
  ): Promise<T> {
    const first = probe();
    if (first !== undefined && first !== null && first !== false) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = probe();
        if (value === undefined || value === null || value === false) return;
        done();
        resolve(value);
      };
      const interval = setInterval(check, 20);
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label}`));
      }, timeoutMs);
      const done = () => {
        clearInterval(interval);
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  /** The first reply to `ref`. */
  reply(ref: string, timeoutMs = WAIT_MS): Promise<ReplyPayload> {
    return this.until(() => this.replies(ref)[0], `reply to ${ref}`, timeoutMs);
  }

  /** Sends a sync request and waits for its reply and its push. */
  async sync(
    request: Record<string, unknown>,
    timeoutMs = WAIT_MS,
  ): Promise<{ push: ApiResponse; reply: ReplyPayload; ref: string }> {
    const ref = this.call(request);
    const reply = await this.reply(ref, timeoutMs);
    const push = await this.until(
      () => this.pushes(request.request_id)[0],
      `push for ${String(request.request_id)}`,
      timeoutMs,
    );
    return { push, reply, ref };
  }

  /** Waits until the stream `requestId` ended (a push with has_more false) and returns all its pushes. */
  async streamDone(requestId: unknown, timeoutMs = WAIT_MS): Promise<ApiResponse[]> {
    await this.until(
      () => this.pushes(requestId).some((p) => !p.has_more),
      `end of stream ${String(requestId)}`,
      timeoutMs,
    );
    return this.pushes(requestId);
  }

  /** Stops reading the socket (the server's writes back up). */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** The 7-key Response the gateway pushes (protocol/gen_api.md §2). */
export function response(requestId: unknown, fields: Partial<ApiResponse> = {}): ApiResponse {
  return {
    request_id: requestId,
    result: null,
    success: true,
    error: null,
    async: false,
    has_more: false,
    can_retry: false,
    ...fields,
  };
}

/** The chunks of a finished stream's pushes: everything after the init and start pushes, minus the end marker. */
export function streamChunks(pushes: readonly ApiResponse[]): unknown[] {
  return pushes
    .slice(2)
    .filter((p) => p.has_more)
    .map((p) => p.result);
}
