import { createHmac, timingSafeEqual } from 'node:crypto';
import { headers, type Msg, type MsgHdrs } from '@nats-io/nats-core';

/** The NATS header carrying a rate-limit cluster message's signature. */
export const SIGNATURE_HEADER = 'Genapi-Rl-Sig';

/** Shortest `rateLimits.clusterSecret` accepted. */
export const MIN_SECRET_LENGTH = 16;

/**
 * HMAC-SHA256 signatures for the cluster's policy messages (protocol/ratelimit.md §5.4): the
 * signature covers the subject the message is sent to and its payload, so a signed message
 * cannot be re-aimed at another subject (or another asker's inbox). Replays of a message on its
 * own subject are harmless: policy changes are versioned, and an old version changes nothing.
 */
export class Signer {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(secret, 'utf8');
  }

  private mac(subject: string, data: Uint8Array): Buffer {
    return createHmac('sha256', this.key).update(subject).update('\n').update(data).digest();
  }

  /** Headers carrying the signature of `data` sent to `subject`. */
  headers(subject: string, data: Uint8Array): MsgHdrs {
    const h = headers();
    h.set(SIGNATURE_HEADER, this.mac(subject, data).toString('base64url'));
    return h;
  }

  /** Whether a received message carries a valid signature for its subject and payload. */
  verify(msg: Msg): boolean {
    const given = msg.headers?.get(SIGNATURE_HEADER) ?? '';
    if (given === '') return false;
    const expected = this.mac(msg.subject, msg.data);
    const actual = Buffer.from(given, 'base64url');
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }
}
