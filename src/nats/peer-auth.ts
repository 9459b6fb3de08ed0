import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** NATS header carrying a signature made with the push token (protocol/nats.md §10). */
export const AUTH_HEADER = 'Genapi-Auth';

/** NATS header of a config pull: a fresh nonce the answer's signature must cover. */
export const NONCE_HEADER = 'Genapi-Nonce';

/** Discovery metadata key: the instance's proof that it holds the push token. */
export const AUTH_METADATA = 'genapi_auth';

/** Shortest push token accepted for signing: HMAC keys shorter than this are guessable. */
export const MIN_PUSH_TOKEN_LENGTH = 16;

/** Limits of signed config pushes. */
export const PEER_AUTH_DEFAULTS = {
  /**
   * A signed push older or newer than this (by its own timestamp) is refused: a recorded push
   * cannot be replayed later to roll a service's config back. Allows for this much clock skew
   * between workers and gateways.
   */
  maxPushAgeMs: 120_000,
} as const;

/** Why a signed message was refused (logged and counted by the receiver). */
export type PeerAuthFailure = 'unsigned' | 'bad_signature' | 'expired';

/**
 * Authentication of worker ↔ gateway messages with the shared push token (`genApi.pushToken` on
 * gateways, `pushToken` in the worker SDK): HMAC-SHA256 signatures so the token itself never
 * travels. Each signature names what it covers ("push", "config", "instance") so one kind cannot
 * be replayed as another.
 *
 * - Config pushes: `Genapi-Auth: <epoch ms>.<mac>` over the subject, the time and the body.
 * - Config pull answers: `Genapi-Auth: <mac>` over the request subject, the gateway's nonce and
 *   the body (a recorded answer is useless for another pull).
 * - Discovery: metadata `genapi_auth` over the service name, deployment version and config
 *   version, so an instance without the token cannot announce a newer deployment.
 */
export class PeerAuth {
  readonly #key: Buffer;

  constructor(token: string) {
    this.#key = Buffer.from(token, 'utf8');
  }

  #mac(parts: readonly (string | Uint8Array)[]): Buffer {
    const hmac = createHmac('sha256', this.#key);
    parts.forEach((part, index) => {
      if (index > 0) hmac.update('\n');
      hmac.update(part);
    });
    return hmac.digest();
  }

  /** The `Genapi-Auth` value of a push of `body` to `subject` at `now`. */
  signPush(subject: string, body: Uint8Array, now: number = Date.now()): string {
    const time = String(now);
    return `${time}.${this.#mac(['push', subject, time, body]).toString('base64url')}`;
  }

  /** Checks a push's `Genapi-Auth` value; null when valid. */
  verifyPush(
    subject: string,
    body: Uint8Array,
    value: string | undefined,
    now: number = Date.now(),
    maxAgeMs: number = PEER_AUTH_DEFAULTS.maxPushAgeMs,
  ): PeerAuthFailure | null {
    if (value === undefined || value === '') return 'unsigned';
    const dot = value.indexOf('.');
    if (dot <= 0) return 'bad_signature';
    const time = value.slice(0, dot);
    if (!/^\d{1,16}$/.test(time)) return 'bad_signature';
    if (!this.#equal(value.slice(dot + 1), this.#mac(['push', subject, time, body])))
      return 'bad_signature';
    return Math.abs(now - Number(time)) > maxAgeMs ? 'expired' : null;
  }

  /** A fresh nonce for a config pull. */
  static nonce(): string {
    return randomBytes(16).toString('base64url');
  }

  /** The `Genapi-Auth` value of a config pull answer. */
  signConfig(requestSubject: string, nonce: string, body: Uint8Array): string {
    return this.#mac(['config', requestSubject, nonce, body]).toString('base64url');
  }

  /** Checks a config pull answer; null when valid. */
  verifyConfig(
    requestSubject: string,
    nonce: string,
    body: Uint8Array,
    value: string | undefined,
  ): PeerAuthFailure | null {
    if (value === undefined || value === '') return 'unsigned';
    return this.#equal(value, this.#mac(['config', requestSubject, nonce, body]))
      ? null
      : 'bad_signature';
  }

  /** The discovery proof of an instance of `service` at `version` with `configVersion`. */
  instanceProof(service: string, version: string, configVersion: string): string {
    return this.#mac(['instance', service, version, configVersion]).toString('base64url');
  }

  /** Checks a discovery proof; null when valid. */
  verifyInstance(
    service: string,
    version: string,
    configVersion: string,
    proof: unknown,
  ): PeerAuthFailure | null {
    if (typeof proof !== 'string' || proof === '') return 'unsigned';
    return this.#equal(proof, this.#mac(['instance', service, version, configVersion]))
      ? null
      : 'bad_signature';
  }

  #equal(given: string, expected: Buffer): boolean {
    const actual = Buffer.from(given, 'base64url');
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }
}
