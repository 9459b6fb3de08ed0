/**
 * FailedConfigs — PhoenixGenApi's ConfigFailed (spec §6.4): function configs that were rejected
 * (by a push, a pull or local registration), with the reasons, kept for a TTL.
 *
 * Unlike PhoenixGenApi, expiry does not depend on cleanup(): reads never return or count expired
 * entries, every record() drops the expired ones, and at most `maxEntries` are kept (the oldest
 * go first).
 */
import { isPlainObject } from './arg-spec.js';
import { normalizeVersion } from './validate.js';
import { OutOfRangeError } from '../../errors.js';

export type FailedSource = 'push' | 'pull' | 'local';

export interface FailedConfig {
  /** Increasing per FailedConfigs instance. */
  readonly id: number;
  /** Best effort from the config: null when it had no string there. */
  readonly service: string | null;
  readonly request_type: string | null;
  /** Normalised like a config version: "", "0.0.0" and non-strings → null. */
  readonly version: string | null;
  readonly source: FailedSource;
  /** Who supplied the config (an instance id, a node name…), or null. */
  readonly origin: string | null;
  readonly reasons: readonly string[];
  /** The config as received (a copy). */
  readonly config: unknown;
  /** Epoch ms. */
  readonly insertedAt: number;
  readonly expiresAt: number;
}

export interface FailedListOptions {
  source?: FailedSource;
  service?: string;
  /** Default 100. */
  limit?: number;
  /** Default newest_first. */
  order?: 'newest_first' | 'oldest_first';
}

export interface FailedSummary {
  total: number;
  push: number;
  pull: number;
  local: number;
  /** Count per service; entries without a service are counted under "". */
  byService: Record<string, number>;
  oldest: FailedConfig | null;
  newest: FailedConfig | null;
}

export interface FailedConfigsOptions {
  /** Default 86 400 000 (24 h). */
  ttlMs?: number;
  /** Default 10 000. */
  maxEntries?: number;
  /** Epoch-ms clock. Default Date.now. */
  now?: () => number;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function copy(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  try {
    return structuredClone(value);
  } catch {
    return value;
  }
}

function newestFirst(a: FailedConfig, b: FailedConfig): number {
  return b.insertedAt - a.insertedAt || b.id - a.id;
}

export class FailedConfigs {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** id → entry, in insertion (id) order. */
  readonly #entries = new Map<number, FailedConfig>();
  #nextId = 1;

  constructor({
    ttlMs = 86_400_000,
    maxEntries = 10_000,
    now = Date.now,
  }: FailedConfigsOptions = {}) {
    if (!(ttlMs > 0)) throw new OutOfRangeError('ttlMs must be positive');
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
      throw new OutOfRangeError('maxEntries must be a positive integer');
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  /** Records a rejected config. A single reason string is wrapped in a list. */
  record(
    config: unknown,
    reasons: string | string[],
    source: FailedSource,
    origin: string | null = null,
  ): FailedConfig {
    const now = this.#now();
    const fields = isPlainObject(config) ? config : {};
    const entry: FailedConfig = Object.freeze({
      id: this.#nextId++,
      service: stringOrNull(fields.service),
      request_type: stringOrNull(fields.request_type),
      version: normalizeVersion(fields.version),
      source,
      origin,
      reasons: Object.freeze(typeof reasons === 'string' ? [reasons] : [...reasons]),
      config: copy(config),
      insertedAt: now,
      expiresAt: now + this.#ttlMs,
    });
    this.#dropExpiredHead(now);
    this.#entries.set(entry.id, entry);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    return entry;
  }

  /** Live (unexpired) entries, filtered, ordered and limited. */
  list(options: FailedListOptions = {}): FailedConfig[] {
    const { source, service, limit = 100, order = 'newest_first' } = options;
    const entries = this.#live().filter(
      (entry) =>
        (source === undefined || entry.source === source) &&
        (service === undefined || entry.service === service),
    );
    entries.sort(order === 'oldest_first' ? (a, b) => newestFirst(b, a) : newestFirst);
    return entries.slice(0, Math.max(0, limit));
  }

  /** Number of live entries. */
  count(): number {
    const now = this.#now();
    let n = 0;
    for (const entry of this.#entries.values()) if (entry.expiresAt > now) n++;
    return n;
  }

  summary(): FailedSummary {
    const entries = this.#live().sort(newestFirst);
    const byService = Object.create(null) as Record<string, number>;
    let push = 0;
    let pull = 0;
    let local = 0;
    for (const entry of entries) {
      if (entry.source === 'push') push++;
      else if (entry.source === 'pull') pull++;
      else local++;
      const key = entry.service ?? '';
      byService[key] = (byService[key] ?? 0) + 1;
    }
    return {
      total: entries.length,
      push,
      pull,
      local,
      byService,
      oldest: entries[entries.length - 1] ?? null,
      newest: entries[0] ?? null,
    };
  }

  /** Removes expired entries now; returns how many were removed. */
  cleanup(): number {
    return this.#removeExpired(this.#now());
  }

  clear(): void {
    this.#entries.clear();
  }

  #live(): FailedConfig[] {
    const now = this.#now();
    const out: FailedConfig[] = [];
    for (const entry of this.#entries.values()) if (entry.expiresAt > now) out.push(entry);
    return out;
  }

  /**
   * Drops expired entries from the oldest end. With a constant TTL, insertion order is expiry
   * order (unless the clock stepped back; reads filter by expiresAt anyway), so this is O(expired).
   */
  #dropExpiredHead(now: number): void {
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt > now) return;
      this.#entries.delete(id);
    }
  }

  #removeExpired(now: number): number {
    let removed = 0;
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#entries.delete(id);
        removed++;
      }
    }
    return removed;
  }
}
