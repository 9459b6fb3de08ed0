/**
 * Helpers for driving the real `phoenix` JS client in Node: promise wrappers around pushes and
 * channel events, `waitFor` (on top of wait.ts), a message recorder and a free-port finder (the TCP proxy
 * that stalls connections is in tcp-proxy.ts).
 */
import type { Channel, Message, Push, Socket, StorageLike } from 'phoenix';
import { until, WAIT_MS } from './wait.js';

export interface PushReply {
  status: string;
  response: unknown;
}

/**
 * Resolves with the first of `statuses` the push receives (default ok, error, timeout). Rejects
 * when nothing arrives within `timeoutMs` (independent of the push's own timeout).
 */
export function replyOf(
  push: Push,
  timeoutMs = WAIT_MS,
  statuses: readonly string[] = ['ok', 'error', 'timeout'],
): Promise<PushReply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no reply (${statuses.join('/')}) within ${timeoutMs} ms`)),
      timeoutMs,
    );
    for (const status of statuses) {
      push.receive(status, (response) => {
        clearTimeout(timer);
        resolve({ status, response });
      });
    }
  });
}

/** The payload of the next `event` on the channel. */
export function nextEvent(channel: Channel, event: string, timeoutMs = WAIT_MS): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const ref = channel.on(event, (payload) => {
      clearTimeout(timer);
      channel.off(event, ref);
      resolve(payload);
    });
    const timer = setTimeout(() => {
      channel.off(event, ref);
      reject(new Error(`no ${event} on ${channel.topic} within ${timeoutMs} ms`));
    }, timeoutMs);
  });
}

/**
 * Polls `probe` until it returns something other than undefined/false/null (0 and '' count as a
 * value here, unlike `until`). Kept for existing callers; it is `until` from wait.ts underneath.
 */
export async function waitFor<T>(
  probe: () => T | undefined | null | false,
  label: string,
  timeoutMs = WAIT_MS,
  intervalMs = 10,
): Promise<T> {
  const box = await until(
    () => {
      const value = probe();
      return value !== undefined && value !== null && value !== false ? { value } : undefined;
    },
    label,
    { timeoutMs, intervalMs },
  );
  return box.value;
}

/** Records every message a socket receives (after decoding). */
export class Recorder {
  readonly messages: (Message & { readonly at: number })[] = [];
  constructor(socket: Socket) {
    socket.onMessage((message) => this.messages.push({ ...message, at: Date.now() }));
  }

  of(topic: string, event?: string): (Message & { readonly at: number })[] {
    return this.messages.filter(
      (m) => m.topic === topic && (event === undefined || m.event === event),
    );
  }
}

/** An in-memory Storage for the client's LongPoll fallback memory. */
export class MemoryStorage implements StorageLike {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

export { freePort } from './nats.js';
