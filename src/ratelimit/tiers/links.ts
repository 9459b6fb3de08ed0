/**
 * What the shared tiers need from the rate-limit cluster (src/ratelimit/cluster implements these):
 * a way to broadcast the eventual tier's hits, and the strict tier's atomic store.
 */
import { GatewayError } from '../../errors.js';
import type { Policy } from '../policy.js';
import type { KeyOwner } from '../store.js';
import type { Decision } from '../types.js';

/** The eventual tier's link: hits committed here are shared with the other gateway nodes. */
export interface EventualLink {
  /** A hit this node allowed for the key value `key` (broadcast it). */
  committed(policy: Policy, key: string, at: number, cost: number): void;
}

/** The strict tier's store: decisions made atomically in a shared store (JetStream KV). */
export interface StrictLink {
  /** Whether a call could succeed now (connected); false sends requests straight to the fallback. */
  available(): boolean;
  /** Checks the key value `key` and, when allowed, records in the store. Rejects with StoreError (timeout, outage, CAS). */
  consume(policy: Policy, key: string, at: number, cost: number, out: Decision): Promise<boolean>;
  /** Takes back a hit `consume` recorded (a later policy denied the request). */
  refund(policy: Policy, key: string, at: number, cost: number): Promise<void>;
}

/** Thrown by the strict tier when the store is slow, down or contended beyond its retries. */
export class StoreError extends GatewayError {
  override readonly name = 'StoreError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_STORE', message, options);
  }
}

/** A remote origin's key budget: keys its hits created that are held here, and the most allowed. */
export interface KeyBudget extends KeyOwner {
  /** `eventual.maxKeysPerOrigin`. */
  readonly maxKeys: number;
}
