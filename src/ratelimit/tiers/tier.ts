import type { DecisionSource } from '../decision.js';
import type { Policy } from '../policy.js';
import type { Decision, Mode } from '../types.js';

/** A hit a tier allowed for one policy and key value: what `commit`, `release` and `publish` take. */
export interface Hold {
  readonly allowed: true;
  readonly policy: Policy;
  readonly key: string;
  /** When the hit was taken, on the tier's clock. */
  readonly at: number;
}

/** A tier's "no" for one policy; the decision itself is in the `out` the tier was given. */
export interface TierDenial {
  readonly allowed: false;
  /** Where the decision was made. */
  readonly source: DecisionSource;
  /**
   * The key could not be held (the policy's store is full and refuses new keys): denied even
   * for a shadow policy.
   */
  readonly refused: boolean;
  /** No decision could be made (a strict store down under fallback "closed"). */
  readonly unavailable: boolean;
}

export type TierAnswer<H extends Hold> = H | TierDenial;

/**
 * Where a policy's counts live (`PolicyConfig.mode`), seen by the decider as two phases: `check`
 * a hit, then `commit` it once every policy allowed, or `release` it when a later one denied;
 * `publish` runs once the whole request is allowed. All-or-nothing: a request denied by one
 * policy consumes nothing from the others.
 */
export interface RateTier<H extends Hold = Hold> {
  readonly mode: Mode;
  /**
   * Answers wait for a shared store: the decider asks such a tier only after every immediate
   * tier allowed, one policy at a time, and its `check` already takes the hit.
   */
  readonly deferred: boolean;
  /** One hit of `policy.cost` for the key value `key`; `out` receives the decision. */
  check(policy: Policy, key: string, out: Decision): TierAnswer<H> | Promise<TierAnswer<H>>;
  /** Makes an allowed hit count. */
  commit(hold: H): void;
  /** Takes a counted hit back (a later policy denied the request). */
  release(hold: H): void | Promise<void>;
  /** The request was allowed as a whole. */
  publish(hold: H): void;
}

/** A tier that answers at once from this node's memory (local, eventual). */
export interface ImmediateTier<H extends Hold = Hold> extends RateTier<H> {
  readonly deferred: false;
  /** Only looks: nothing counts until `commit`. */
  check(policy: Policy, key: string, out: Decision): TierAnswer<H>;
  release(hold: H): void;
  /**
   * check, commit and publish at once, allocating nothing: a request only this policy limits
   * (the hot path). null when allowed.
   */
  admit(policy: Policy, key: string, out: Decision): TierDenial | null;
}

/** A tier whose answers come from a shared store (strict). */
export interface DeferredTier<H extends Hold = Hold> extends RateTier<H> {
  readonly deferred: true;
  /** Takes the hit (in the store, or the fallback): `release` gives it back. */
  check(policy: Policy, key: string, out: Decision): Promise<TierAnswer<H>>;
  /** Gives a taken hit back to the store (settles once the store answered or gave up). */
  release(hold: H): Promise<void>;
}

/** The denial answers a tier gives (made once per tier and source: a denial allocates nothing). */
export function tierDenial(
  source: DecisionSource,
  how: { refused?: boolean; unavailable?: boolean } = {},
): TierDenial {
  return {
    allowed: false,
    source,
    refused: how.refused === true,
    unavailable: how.unavailable === true,
  };
}

/** A policy's "key store full" decision, written into `out`: retry after one window. */
export function refusedKey(policy: Policy, out: Decision): void {
  const { limit, windowMs } = policy.algorithm;
  out.allowed = false;
  out.limit = limit;
  out.windowMs = windowMs;
  out.remaining = 0;
  out.resetMs = windowMs;
  out.retryAfterMs = windowMs;
}
