import {
  InvalidArgumentError as NatsInvalidArgumentError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import type { TimerEntry, TimerWheel } from '../../util/timer-wheel.js';
import type { TransportFailure } from '../types.js';
import { GatewayError } from '../../errors.js';
import { natsInbox } from '../../nats/connection.js';

/** A publish the client refused: too large for the server's max_payload, or no connection. */
export class PayloadTooLargeError extends GatewayError {
  override readonly name = 'PayloadTooLargeError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_PAYLOAD_TOO_LARGE', message, options);
  }
}

/**
 * The boundary where nats.js's publish errors become ours. nats.js has no class of its own for a
 * message over the server's max_payload: it throws its InvalidArgumentError, and on publish that is
 * the only InvalidArgumentError it throws (closed or draining connections and bad subjects have
 * their own classes, and our subjects are valid), so the class alone tells "too large".
 */
function publishFailure(err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof NatsInvalidArgumentError)
    return new PayloadTooLargeError(`request too large for NATS: ${message}`, { cause: err });
  return new RequestFailure('disconnected', message, { cause: err });
}

/** A request that got no usable answer; `reason` is the transport failure. */
export class RequestFailure extends GatewayError {
  override readonly name = 'RequestFailure';
  constructor(
    readonly reason: TransportFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super('ERR_REQUEST_FAILED', message, options);
  }
}

class Pending implements TimerEntry {
  timerSlot = -1;
  /** The caller's signal, whose watch set holds this request while it waits. */
  signal: AbortSignal | null = null;
  /** The instance the request went to (so losing it fails the request at once). */
  tag: string | null = null;
  /** Waiting for this turn's publish (see Requester.flush). */
  payload: Uint8Array | null = null;
  headers: MsgHdrs | null = null;
  constructor(
    readonly token: string,
    readonly resolve: (msg: Msg) => void,
    readonly reject: (err: Error) => void,
    readonly subject: string,
    readonly timeoutMs: number,
    private readonly owner: Requester,
  ) {}

  onTimer(): void {
    this.owner.fail(
      this,
      new RequestFailure('timeout', `no reply from ${this.subject} within ${this.timeoutMs}ms`),
    );
  }
}

/**
 * Request/reply over one wildcard inbox subscription. Deadlines live on a shared timer wheel (no
 * timer per request); a request can be aborted; no responders (the server's 503 status) fails at
 * once; and when the connection drops every pending request fails at once instead of waiting
 * for its timeout (its reply could not arrive anyway).
 */
export class Requester {
  private readonly inbox: string;
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  private counter = 0;
  private connected = true;
  /** Requests of this turn of the event loop, published together (see flush). */
  private outbox: Pending[] = [];
  private flushScheduled = false;
  /**
   * Waiting requests by the signal that cancels them. A signal (a channel's) gets one abort
   * listener however many requests it carries: EventTarget listeners are costly to add and remove.
   */
  private readonly watched = new WeakMap<AbortSignal, Set<Pending>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly wheel: TimerWheel,
  ) {
    this.inbox = natsInbox(nc);
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => this.onReply(err, msg) });
  }

  get size(): number {
    return this.pending.size;
  }

  request(
    subject: string,
    payload: Uint8Array,
    headers: MsgHdrs,
    timeoutMs: number,
    signal?: AbortSignal,
    tag: string | null = null,
  ): Promise<Msg> {
    if (!this.connected || this.nc.isClosed()) {
      return Promise.reject(new RequestFailure('disconnected', 'NATS is disconnected'));
    }
    const token = (++this.counter).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const pending = new Pending(token, resolve, reject, subject, timeoutMs, this);
      pending.tag = tag;
      this.pending.set(token, pending);
      this.wheel.schedule(pending, this.wheel.clock() + timeoutMs);
      if (signal) {
        if (signal.aborted) {
          this.fail(pending, new RequestFailure('cancelled', 'request cancelled'));
          return;
        }
        pending.signal = signal;
        this.watch(signal).add(pending);
      }
      pending.payload = payload;
      pending.headers = headers;
      this.outbox.push(pending);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /**
   * Publishes the turn's requests. The client writes to its socket once per microtask checkpoint,
   * which is once per client frame when requests go out as they come; gathered until the turn's
   * I/O callbacks are done, they leave in one write.
   */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    const outbox = this.outbox;
    this.outbox = [];
    for (const pending of outbox) {
      const { payload, headers } = pending;
      pending.payload = null;
      pending.headers = null;
      // Settled meanwhile (aborted, timed out, connection lost): nothing to send.
      if (payload === null || this.pending.get(pending.token) !== pending) continue;
      try {
        this.nc.publish(pending.subject, payload, {
          reply: `${this.inbox}.${pending.token}`,
          headers: headers ?? undefined,
        });
      } catch (err) {
        this.fail(pending, publishFailure(err));
      }
    }
  };

  private watch(signal: AbortSignal): Set<Pending> {
    let set = this.watched.get(signal);
    if (!set) {
      const requests = new Set<Pending>();
      set = requests;
      this.watched.set(signal, requests);
      signal.addEventListener(
        'abort',
        () => {
          this.watched.delete(signal);
          for (const pending of [...requests])
            this.fail(pending, new RequestFailure('cancelled', 'request cancelled'));
        },
        { once: true },
      );
    }
    return set;
  }

  /** @internal */
  fail(pending: Pending, err: Error): void {
    if (!this.settle(pending)) return;
    pending.reject(err);
  }

  /** Forgets a pending request; false when it was already settled. */
  private settle(pending: Pending): boolean {
    if (this.pending.get(pending.token) !== pending) return false;
    this.pending.delete(pending.token);
    this.wheel.cancel(pending);
    if (pending.signal) this.watched.get(pending.signal)?.delete(pending);
    return true;
  }

  /** Fails every request still waiting on the instance `tag` (it is gone; no reply will come). */
  failTagged(tag: string, err: RequestFailure): number {
    let failed = 0;
    for (const pending of [...this.pending.values()]) {
      if (pending.tag !== tag) continue;
      this.fail(pending, err);
      failed++;
    }
    return failed;
  }

  /** The connection went down or came back: while down, requests fail fast. */
  setConnected(connected: boolean): void {
    this.connected = connected;
    if (connected) return;
    for (const pending of [...this.pending.values()])
      this.fail(pending, new RequestFailure('disconnected', 'NATS connection lost'));
  }

  close(): void {
    this.setConnected(false);
    this.sub.unsubscribe();
  }

  private onReply(err: Error | null, msg: Msg): void {
    if (err) return;
    const token = msg.subject.slice(this.inbox.length + 1);
    const pending = this.pending.get(token);
    if (!pending || !this.settle(pending)) return;
    if (msg.headers?.code === 503 && msg.data.length === 0) {
      pending.reject(new RequestFailure('no_responders', `no responders for ${pending.subject}`));
    } else {
      pending.resolve(msg);
    }
  }
}
