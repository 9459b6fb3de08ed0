/**
 * Node selection (spec §7.3): orders the live instances of a worker service for one request, primary
 * first; the executor's fallback and retries walk that list.
 *
 * Differences from PhoenixGenApi's NodeSelector, on purpose:
 * - round_robin keeps one counter per config (service, request type, version), not one global
 *   counter shared by every config (which made one function's traffic skew another's rotation).
 * - the sticky table is namespaced by service, and a request without a sticky value is placed at
 *   random without storing anything (PhoenixGenApi stored it under the key *name*, so every such
 *   request of every service then stuck to one node).
 * - `weighted` (canary by deployment version) is new.
 * - no "no nodes" error: an empty instance list gives an empty order; the caller reports it.
 *
 * Randomness and time are injected (`random`, `now`) so behaviour is reproducible in tests.
 */
import { LRUCache } from 'lru-cache';
import type { GenApiRequest, NodeMode, ResolvedFunConfig, ServiceInstance } from '../types.js';
import { stableHash } from './hash.js';
import { InvalidArgumentError, OutOfRangeError } from '../../errors.js';

export interface NodeSelectorOptions {
  /** Uniform source in [0, 1). Default Math.random. */
  random?: () => number;
  /** Clock in ms. Default Date.now. */
  now?: () => number;
  /** Maximum number of sticky assignments kept (least recently used evicted first). Default 100 000. */
  stickyCapacity?: number;
}

export const DEFAULT_STICKY_CAPACITY = 100_000;

/** Round-robin counters kept (one per config; the least recently used is dropped and restarts at 0). */
const ROUND_ROBIN_CAPACITY = 10_000;

interface StickyEntry {
  readonly instanceId: string;
  /** Absolute ms; the entry is usable while now < expiresAt. Never extended by a reuse. */
  readonly expiresAt: number;
}

export class NodeSelector {
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly sticky: LRUCache<string, StickyEntry>;
  private readonly counters = new LRUCache<string, number>({ max: ROUND_ROBIN_CAPACITY });

  constructor(options: NodeSelectorOptions = {}) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    const capacity = options.stickyCapacity ?? DEFAULT_STICKY_CAPACITY;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new OutOfRangeError(
        `stickyCapacity must be a positive integer, got ${String(capacity)}`,
      );
    }
    this.sticky = new LRUCache<string, StickyEntry>({ max: capacity });
  }

  /**
   * `instances` in fallback order for this request, primary first; [] when there are none.
   * `instances` itself is never modified.
   */
  order(
    config: ResolvedFunConfig,
    request: GenApiRequest,
    instances: readonly ServiceInstance[],
  ): ServiceInstance[] {
    const n = instances.length;
    if (n === 0) return [];
    const mode: NodeMode = config.nodeMode;
    switch (mode.kind) {
      case 'random':
        return this.randomOrder(instances);
      case 'hash':
        return primaryThenRest(instances, stableHash(String(request.request_id)) % n);
      case 'hash_arg': {
        const value = ownValue(request.args, mode.key);
        if (value == null) return this.randomOrder(instances);
        return primaryThenRest(instances, stableHash(hashText(value)) % n);
      }
      case 'round_robin': {
        const key = JSON.stringify([config.service, config.requestType, config.version]);
        const counter = this.counters.get(key) ?? 0;
        this.counters.set(key, counter + 1 >= Number.MAX_SAFE_INTEGER ? 0 : counter + 1);
        const index = counter % n;
        return [...instances.slice(index), ...instances.slice(0, index)];
      }
      case 'sticky':
        return this.stickyOrder(config.service, mode.key, mode.ttlMs, request, instances);
      case 'weighted':
        return this.weightedOrder(mode.weights, mode.defaultWeight, instances);
      default: {
        const unknownMode: never = mode;
        throw new InvalidArgumentError(`unknown node mode: ${JSON.stringify(unknownMode)}`);
      }
    }
  }

  /**
   * Number of live sticky assignments. Expired ones are dropped first (the equivalent of
   * PhoenixGenApi's `cleanup_sticky_table/0`; calling it repeatedly is harmless).
   */
  stickySize(): number {
    const now = this.now();
    const expired: string[] = [];
    for (const [key, entry] of this.sticky.entries()) {
      if (!(now < entry.expiresAt)) expired.push(key);
    }
    for (const key of expired) this.sticky.delete(key);
    return this.sticky.size;
  }

  /** Forgets every sticky assignment. */
  clearSticky(): void {
    this.sticky.clear();
  }

  /** An index in [0, n), uniform (given a uniform `random`); robust to a source returning 1 or junk. */
  private pick(n: number): number {
    const i = Math.floor(this.random() * n);
    return i >= 0 && i < n ? i : i >= n ? n - 1 : 0;
  }

  /** Fisher–Yates, in place. */
  private shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.pick(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** Primary uniformly at random, then the others shuffled. */
  private randomOrder(instances: readonly ServiceInstance[]): ServiceInstance[] {
    const index = this.pick(instances.length);
    const rest = instances.filter((_, i) => i !== index);
    return [instances[index] as ServiceInstance, ...this.shuffle(rest)];
  }

  private stickyOrder(
    service: string,
    key: string,
    ttlMs: number,
    request: GenApiRequest,
    instances: readonly ServiceInstance[],
  ): ServiceInstance[] {
    const value = stickyValue(request, key);
    // No value: nothing to be sticky on. Place at random and remember nothing.
    if (value == null) return this.randomOrder(instances);

    const tableKey = JSON.stringify([service, stickyText(value)]);
    const now = this.now();
    const entry = this.sticky.get(tableKey);
    if (entry !== undefined && now < entry.expiresAt) {
      const index = instances.findIndex((instance) => instance.id === entry.instanceId);
      if (index >= 0) return primaryThenRest(instances, index);
    }
    const index = this.pick(instances.length);
    const chosen = instances[index] as ServiceInstance;
    this.sticky.set(tableKey, { instanceId: chosen.id, expiresAt: now + ttlMs });
    return primaryThenRest(instances, index);
  }

  /**
   * Canary by deployment version. A version's weight is its share of the traffic however many
   * instances run it, so each instance weighs versionWeight / instancesOfThatVersion. The primary is
   * drawn by weight (uniformly when every weight is 0); the others follow by descending instance
   * weight, ties in random order, zero-weight instances last.
   */
  private weightedOrder(
    weights: ReadonlyMap<string, number>,
    defaultWeight: number,
    instances: readonly ServiceInstance[],
  ): ServiceInstance[] {
    const perVersion = new Map<string, number>();
    for (const instance of instances)
      perVersion.set(instance.version, (perVersion.get(instance.version) ?? 0) + 1);
    const instanceWeight = instances.map((instance) => {
      const versionWeight = usableWeight(weights.get(instance.version) ?? defaultWeight);
      return versionWeight / (perVersion.get(instance.version) ?? 1);
    });
    const total = instanceWeight.reduce((sum, w) => sum + w, 0);

    let primary: number;
    if (!(total > 0) || !Number.isFinite(total)) {
      primary = this.pick(instances.length);
    } else {
      const target = this.random() * total;
      let cumulative = 0;
      primary = -1;
      let lastPositive = 0;
      for (let i = 0; i < instanceWeight.length; i++) {
        const w = instanceWeight[i] as number;
        if (w <= 0) continue;
        lastPositive = i;
        cumulative += w;
        if (target < cumulative) {
          primary = i;
          break;
        }
      }
      // Rounding (or a random source returning 1) can leave target ≥ the final sum.
      if (primary < 0) primary = lastPositive;
    }

    const rest = this.shuffle(instances.map((_, i) => i).filter((i) => i !== primary));
    // Array.prototype.sort is stable, so equal weights keep their shuffled order.
    rest.sort((a, b) => (instanceWeight[b] as number) - (instanceWeight[a] as number));
    return [
      instances[primary] as ServiceInstance,
      ...rest.map((i) => instances[i] as ServiceInstance),
    ];
  }
}

/** instances[index] first, then the others in their given order. */
function primaryThenRest(instances: readonly ServiceInstance[], index: number): ServiceInstance[] {
  return [instances[index] as ServiceInstance, ...instances.filter((_, i) => i !== index)];
}

/** `obj[key]` for an own property only (so `"constructor"`, `"__proto__"` … never hit the prototype). */
function ownValue(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null || !Object.hasOwn(obj, key)) return undefined;
  return (obj as Record<string, unknown>)[key];
}

/** The args value, else the request field of that name (`user_id`, `device_id`, `request_id`, …). */
function stickyValue(request: GenApiRequest, key: string): unknown {
  const fromArgs = ownValue(request.args, key);
  if (fromArgs != null) return fromArgs;
  return ownValue(request, key);
}

/** Text hashed by `hash_arg`: strings as-is, other JSON values as JSON. */
function hashText(value: unknown): string {
  return typeof value === 'string' ? value : safeJson(value);
}

/** Sticky table key part: JSON for every value, so the string "1" and the number 1 stay distinct. */
function stickyText(value: unknown): string {
  return safeJson(value);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Negative, NaN and infinite weights count as 0 (a validated config never has them). */
function usableWeight(weight: number): number {
  return Number.isFinite(weight) && weight > 0 ? weight : 0;
}
