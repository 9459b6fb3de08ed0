/**
 * Who made a key: a remote origin's count of the keys its hits created that are still held
 * (its key budget, `eventual.maxKeysPerOrigin`). The store gives a key back when it drops it.
 */
export interface KeyOwner {
  keys: number;
}

/** One key's algorithm state and when it stops mattering. */
export interface Slot<S> {
  state: S;
  expiresAt: number;
  /** The sweep bucket the key is filed under (the store's business). */
  bucket: number;
  /** Touched since eviction last looked at it (CLOCK: a cheap least-recently-used). */
  used: boolean;
  /** The remote origin whose hit created the key (null: made here). */
  owner: KeyOwner | null;
}

export interface StateStoreOptions {
  /** Sweep resolution. Default 1000 ms. */
  sweepMs?: number;
  /** Keys held at most; beyond it a key not used lately goes (`evict`) or new keys are refused (`deny`). */
  maxKeys?: number;
  onFull?: 'evict' | 'deny';
}

/**
 * Per-policy key → state, with expiry by time buckets: each key is filed under the bucket of its
 * expiry; a sweep drops a bucket's keys that really expired and re-files the ones touched since.
 * No timer per key, O(1) amortised per key and window, and a hard key cap. Eviction is CLOCK
 * (second chance): a touched key is moved behind the others instead of going, so a busy key is
 * not forgotten just because it is old.
 */
/** The defaults of `StateStoreOptions` (rateLimits.sweepMs and rateLimits.maxKeys). */
export const STATE_STORE_DEFAULTS = { sweepMs: 1000, maxKeys: 1_000_000, onFull: 'evict' } as const;

export class StateStore<S> {
  private readonly slots = new Map<string, Slot<S>>();
  private readonly buckets = new Map<number, string[]>();
  private readonly sweepMs: number;
  private readonly maxKeys: number;
  private readonly onFull: 'evict' | 'deny';
  /** Last bucket swept (keys are never filed at or below it). */
  private swept = Number.NEGATIVE_INFINITY;
  /** Keys dropped to stay under maxKeys, and keys refused. */
  evicted = 0;
  refused = 0;

  constructor(options: StateStoreOptions = {}) {
    this.sweepMs = options.sweepMs ?? STATE_STORE_DEFAULTS.sweepMs;
    this.maxKeys = options.maxKeys ?? STATE_STORE_DEFAULTS.maxKeys;
    this.onFull = options.onFull ?? STATE_STORE_DEFAULTS.onFull;
  }

  get size(): number {
    return this.slots.size;
  }

  get(key: string): Slot<S> | undefined {
    return this.slots.get(key);
  }

  /**
   * The slot of `key`, created when missing (charged to `owner`, a remote origin, if given);
   * null when the store is full and refuses new keys.
   */
  ensure(key: string, create: () => S, now: number, owner: KeyOwner | null = null): Slot<S> | null {
    const found = this.slots.get(key);
    if (found) return found;
    if (this.slots.size >= this.maxKeys) {
      if (this.onFull === 'deny') {
        this.refused++;
        return null;
      }
      this.evictOne();
    }
    const slot: Slot<S> = {
      state: create(),
      expiresAt: now,
      bucket: this.bucketOf(now),
      used: false,
      owner,
    };
    if (owner) owner.keys++;
    this.slots.set(key, slot);
    this.file(key, slot.bucket);
    return slot;
  }

  /** Records when the slot's state expires (re-filed lazily, at the sweep of its old bucket). */
  touch(slot: Slot<S>, expiresAt: number): void {
    slot.expiresAt = expiresAt;
    slot.used = true;
  }

  /** Drops the oldest key not touched since eviction last passed it (second chance). */
  private evictOne(): void {
    for (const [key, slot] of this.slots) {
      this.slots.delete(key);
      if (slot.used) {
        slot.used = false;
        this.slots.set(key, slot);
        continue;
      }
      release(slot);
      this.evicted++;
      return;
    }
  }

  delete(key: string): boolean {
    const slot = this.slots.get(key);
    if (!slot) return false;
    release(slot);
    return this.slots.delete(key);
  }

  clear(): void {
    this.releaseOwners();
    this.slots.clear();
    this.buckets.clear();
  }

  /** Gives every remote-made key back to its origin (a store left behind by its policy). */
  releaseOwners(): void {
    for (const slot of this.slots.values()) release(slot);
  }

  entries(): IterableIterator<[string, Slot<S>]> {
    return this.slots.entries();
  }

  /** Drops expired keys; returns how many. Visits every bucket due, however late the sweep runs. */
  sweep(now: number): number {
    const current = Math.floor(now / this.sweepMs);
    let dropped = 0;
    for (const [bucket, keys] of this.buckets) {
      // Buckets re-filed during this sweep lie beyond `current`: skipped.
      if (bucket > current) continue;
      this.buckets.delete(bucket);
      for (const key of keys) {
        const slot = this.slots.get(key);
        if (!slot || slot.bucket !== bucket) continue;
        if (slot.expiresAt <= now) {
          release(slot);
          this.slots.delete(key);
          dropped++;
        } else {
          slot.bucket = this.bucketOf(slot.expiresAt);
          this.file(key, slot.bucket);
        }
      }
    }
    this.swept = current;
    return dropped;
  }

  private bucketOf(expiresAt: number): number {
    return Math.max(Math.floor(expiresAt / this.sweepMs) + 1, this.swept + 1);
  }

  private file(key: string, bucket: number): void {
    const keys = this.buckets.get(bucket);
    if (keys) keys.push(key);
    else this.buckets.set(bucket, [key]);
  }
}

/** Gives a key back to the origin that made it (once). */
function release(slot: Slot<unknown>): void {
  if (slot.owner) slot.owner.keys--;
  slot.owner = null;
}
