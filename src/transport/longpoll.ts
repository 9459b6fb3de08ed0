import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendEmpty, sendPlain, STOPPING_REFUSAL } from '../http/responses.js';
import { decodeBase64 } from '../http/subprotocols.js';
import type { TransportHost } from './host.js';
import { EXPIRY_WINDOWS, LongPollSession, sendStatus } from './longpoll-session.js';

/**
 * The connect params of a new session: a 1.8 client whose session ended still appends the old
 * session token after its own params, so with two `token` params the last one is dropped and an
 * auth token named `token` reaches the connect hook as the client set it.
 */
function withoutSessionToken(query: string): string {
  const params = new URLSearchParams(query);
  const tokens = params.getAll('token');
  if (tokens.length < 2) return query;
  params.delete('token');
  for (const token of tokens.slice(0, -1)) params.append('token', token);
  return params.toString();
}

/**
 * Serves `<mount>/longpoll` as Phoenix's LongPoll transport does (protocol/phoenix.md §LongPoll):
 * GET without a valid token creates a session (410 + token), GET with one long-polls (200/204),
 * POST publishes ndjson lines (or one frame) and answers once each was dispatched (408 when one
 * takes longer than the window), OPTIONS answers CORS preflights.
 */
export class LongPollTransport<Init> {
  readonly path: string;
  readonly windowMs: number;
  private readonly sessions = new Map<string, LongPollSession<Init>>();

  constructor(readonly host: TransportHost<Init>) {
    this.path = host.options.path + host.options.longpoll!.path;
    this.windowMs = host.options.longpoll!.windowMs;
  }

  clock(): number {
    return this.host.wheel.clock();
  }

  get size(): number {
    return this.sessions.size;
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse, query: string): Promise<void> {
    if (req.method === 'OPTIONS') {
      sendEmpty(res, 200, {
        'access-control-allow-origin': '*',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '',
        'access-control-allow-methods': 'get, post, options',
        'access-control-max-age': '3600',
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'POST') {
      sendEmpty(res, 400);
      return;
    }
    if (!this.host.originAllowed(req)) {
      sendStatus(res, { status: 403 });
      return;
    }
    const token = this.tokenOf(req, query);
    const id = this.host.tokens.verify(token);
    const lp = id === null ? undefined : this.sessions.get(id);
    if (req.method === 'GET') {
      if (lp) lp.poll(req, res);
      else await this.createSession(req, res, withoutSessionToken(query));
      return;
    }
    if (!lp) {
      req.resume();
      sendStatus(res, { status: 410 });
      return;
    }
    await this.publish(req, res, lp);
  }

  /**
   * The header (1.9 clients) wins over the `token` query param (1.8 clients). A 1.8 client
   * appends the session token after its own params, which may hold a `token` of their own (the
   * usual name of an auth token): the last one is the session's, as Plug reads it.
   */
  private tokenOf(req: IncomingMessage, query: string): string | undefined {
    const header = req.headers['x-phoenix-longpoll-token'];
    if (typeof header === 'string' && header !== '') return header;
    const all = new URLSearchParams(query).getAll('token');
    return all.length === 0 ? undefined : all[all.length - 1];
  }

  /** A new session while the gateway stops: 503 (the JS client retries, as after any server error). */
  private refuseStopping(res: ServerResponse): void {
    sendPlain(res, 503, STOPPING_REFUSAL, { 'access-control-allow-origin': '*' });
  }

  private async createSession(
    req: IncomingMessage,
    res: ServerResponse,
    query: string,
  ): Promise<void> {
    if (this.host.closed) {
      // Stopping (a drain): no connect hook runs; existing sessions go on polling.
      this.refuseStopping(res);
      return;
    }
    const header = req.headers['x-phoenix-authtoken'];
    const authToken = this.host.options.authToken && typeof header === 'string' ? header : null;
    const result = await this.host.authorize(req, 'longpoll', this.path, query, authToken);
    if (!result.ok) {
      this.host.logger.info(
        { status: result.status, reason: result.reason, transport: 'longpoll' },
        'connection refused',
      );
      if (result.status >= 500) {
        // Empty body: the JS client retries, as after any server error.
        sendEmpty(res, result.status, { 'access-control-allow-origin': '*', ...result.headers });
      } else {
        // The client understands only 403 in the body; the HTTP status keeps a custom one (429).
        sendStatus(
          res,
          { status: 403 },
          result.status === 403 ? 200 : result.status,
          result.headers,
        );
      }
      return;
    }
    if (this.host.closed) {
      this.refuseStopping(res);
      return;
    }
    this.open(result.init, res, result.headers);
  }

  private open(init: Init, res: ServerResponse, headers?: Readonly<Record<string, string>>): void {
    const { id, token } = this.host.tokens.issue();
    const lp = new LongPollSession(id, token, this);
    lp.session = this.host.createSession(lp, init);
    this.sessions.set(id, lp);
    this.host.stats.longpollSessions++;
    this.host.wheel.schedule(lp, this.clock() + this.windowMs * EXPIRY_WINDOWS + 1);
    sendStatus(res, { status: 410, token, messages: [] }, 200, headers);
  }

  /** @internal called when a LongPoll session ends for any reason. */
  forget(lp: LongPollSession<Init>): void {
    this.host.wheel.cancel(lp);
    if (this.sessions.delete(lp.id)) this.host.stats.longpollSessions--;
  }

  private async publish(
    req: IncomingMessage,
    res: ServerResponse,
    lp: LongPollSession<Init>,
  ): Promise<void> {
    const { options } = this.host;
    const body = await readBody(req, options.longpoll!.maxBodyBytes);
    if (body === null) {
      sendStatus(res, { status: 413 }, 413, { connection: 'close' });
      return;
    }
    const ndjson = (req.headers['content-type'] ?? '').includes('application/x-ndjson');
    const text = body.toString('utf8');
    const lines = ndjson ? text.split(/\r?\n/).slice(0, options.longpoll!.maxBatchLines) : [text];
    for (const line of lines) {
      if (ndjson && line === '') continue;
      const session = lp.session;
      if (Buffer.byteLength(line) > options.maxFrameSize) {
        this.host.stats.invalidFrames++;
        session.close(this.host.closeCodes.tooLarge, 'frame too large');
        sendStatus(res, { status: 413 }, 413);
        return;
      }
      const binary = ndjson && line[0] !== '[' && line[0] !== '{';
      let pending: Promise<void> | undefined;
      if (binary) {
        const decoded = decodeBase64(line);
        if (decoded === null) {
          this.host.stats.invalidFrames++;
          session.close(
            this.host.closeCodes.invalidFrame,
            'ndjson line is neither a JSON frame nor base64',
          );
        } else {
          pending = session.receive(decoded, true);
        }
      } else {
        pending = session.receive(line, false);
      }
      if (pending) {
        if (!(await this.acked(pending))) {
          sendStatus(res, { status: 408 });
          return;
        }
      }
      if (session.closed) {
        this.answerClosed(res, session.closeCode);
        return;
      }
    }
    sendStatus(res, { status: 200 });
  }

  /** The POST's answer when its session ended while dispatching it. */
  private answerClosed(res: ServerResponse, code: number | null): void {
    if (code === this.host.closeCodes.invalidFrame)
      sendStatus(res, { status: 400, reason: 'invalid frame' }, 400);
    else sendStatus(res, { status: 410 });
  }

  /** Waits for a dispatch queued behind a pending join, at most one window. */
  private acked(pending: Promise<void>): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), this.windowMs);
      pending.then(
        () => {
          clearTimeout(timer);
          resolve(true);
        },
        (err: unknown) => {
          // The frame was not dispatched: answer as for a frame that was not acked in time.
          clearTimeout(timer);
          this.host.logger.error({ err }, 'longpoll frame dispatch failed');
          resolve(false);
        },
      );
    });
  }

  close(): void {
    for (const lp of [...this.sessions.values()])
      lp.session.close(this.host.closeCodes.drain, 'server shutting down');
  }
}
