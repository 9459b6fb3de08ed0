import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * LongPoll session tokens: `<random id>.<HMAC-SHA256(id)>`, url- and header-safe. The id alone is
 * unguessable; the signature lets a node tell a forged token from an expired one and lets nodes
 * sharing a secret recognise each other's tokens.
 */
export class SessionTokens {
  private readonly key: Buffer;

  constructor(secret?: string) {
    this.key = secret === undefined ? randomBytes(32) : Buffer.from(secret, 'utf8');
  }

  issue(): { id: string; token: string } {
    const id = randomBytes(18).toString('base64url');
    return { id, token: `${id}.${this.sign(id)}` };
  }

  /** The session id of a well-signed token, or null. */
  verify(token: string | undefined): string | null {
    if (!token) return null;
    const dot = token.indexOf('.');
    if (dot <= 0) return null;
    const id = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1));
    const expected = Buffer.from(this.sign(id));
    return given.length === expected.length && timingSafeEqual(given, expected) ? id : null;
  }

  private sign(id: string): string {
    return createHmac('sha256', this.key).update(id).digest('base64url');
  }
}
