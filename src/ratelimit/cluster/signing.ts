import { createHmac, timingSafeEqual } from 'node:crypto';
import { headers, type Msg, type MsgHdrs } from '@nats-io/nats-core';

/** The NATS header carrying a rate-limit cluster message's signature. */
export const SIGNATURE_HEADER = 'Genapi-Rl-Sig';

/** Shortest `rateLimits.clusterSecret` accepted. */
export const MIN_SECRET_LENGTH = 16;

/**
 * HMAC-SHA256 signatures for every rate-limit cluster message (protocol/ratelimit.md §5.4): the
 * signature covers the subject the message is sent to, its reply subject when it has one (a
 * request: so a captured request cannot be pointed at another inbox) and its payload, so a signed
 * message cannot be re-aimed at another subject or another asker's inbox. Replays on the same
 * subject are handled by each message kind: policy changes are versioned, hit batches numbered,
 * heartbeats counted, and requests answered once per inbox while fresh (ClusterGuard).
 */
export class Signer {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(secret, 'utf8');
  }

  private mac(subject: string, reply: string, data: Uint8Array): Buffer {
    const hmac = createHmac('sha256', this.key).update(subject).update('\n');
    // Subjects hold no newline and payloads are JSON objects ("{…"): the layout is unambiguous.
    if (reply !== '') hmac.update(reply).update('\n');
    return hmac.update(data).digest();
  }

  /** Headers carrying the signature of `data` sent to `subject` (with `reply`, a request). */
  headers(subject: string, data: Uint8Array, reply = ''): MsgHdrs {
    const h = headers();
    h.set(SIGNATURE_HEADER, this.mac(subject, reply, data).toString('base64url'));
    return h;
  }

  /** Whether a received message carries a valid signature for its subject and payload. */
  verify(msg: Msg): boolean {
    const given = msg.headers?.get(SIGNATURE_HEADER) ?? '';
    if (given === '') return false;
    const expected = this.mac(msg.subject, msg.reply ?? '', msg.data);
    const actual = Buffer.from(given, 'base64url');
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }
}
