import {
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { Subjects } from '../../nats/subjects.js';
import type { ServiceDefinition } from '../define.js';
import type { ServeObserver } from '../observer.js';
import type { Broadcaster } from '../pushes.js';
import type { EndpointStats } from './endpoint-stats.js';
import { respondError } from './micro-service.js';

const encoder = new TextEncoder();

/** A reply body: `value` as JSON (`undefined` as null). */
export const json = (value: unknown): Uint8Array =>
  encoder.encode(JSON.stringify(value === undefined ? null : value));

/** Reply headers holding `entries`. */
export function replyHeaders(entries: Record<string, string>): MsgHdrs {
  const h = natsHeaders();
  for (const [name, value] of Object.entries(entries)) h.set(name, value);
  return h;
}

/**
 * What the parts of a served service share: who it is, where it talks, and how it replies. One
 * per `serve()`; `observer` is set once metrics started (the instance id names them).
 */
export class ServeScope {
  /** The metrics observer, or null without metrics (one null check per event on the hot path). */
  observer: ServeObserver | null = null;
  /** The micro service instance id; set once the service is registered. */
  id = '';

  constructor(
    readonly nc: NatsConnection,
    readonly definition: ServiceDefinition,
    readonly subjects: Subjects,
    readonly pushes: Broadcaster,
    readonly logger: Logger,
  ) {}

  /** Replies can fail when the connection closed under us; the worker must not crash for it. */
  send(reply: () => unknown): boolean {
    try {
      reply();
      return true;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'reply not sent');
      return false;
    }
  }

  /** An error reply, accounted on the endpoint's statistics. */
  fail(msg: Msg, stats: EndpointStats, startedAt: number, code: number, message: string): void {
    this.send(() => respondError(msg, code, message));
    stats.replied(startedAt, message);
  }
}
