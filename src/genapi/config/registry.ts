/**
 * ConfigRegistry — PhoenixGenApi's ConfigDb (spec §6.1): resolved function configs keyed by
 * (service, request_type, version | null).
 *
 * Versions are stored normalised (`""` and `"0.0.0"` are the unversioned key, as FunConfig.version/1
 * makes them), and version arguments are normalised the same way.
 *
 * Hot path: `resolve()` with a version is three Map lookups and returns a pre-built Lookup object;
 * without a version it is one lru-cache lookup (the key string is the only allocation). The cache
 * is invalidated for a (service, request_type) on every change to it. A config's argument rules are
 * compiled into their checker when it is added (args/compile.ts), not on its first request.
 */
import { LRUCache } from 'lru-cache';
import { argChecker } from '../args/compile.js';
import type { ResolvedFunConfig } from '../types.js';
import { compareVersions } from './semver.js';
import { normalizeVersion } from './validate.js';

export type Lookup =
  { ok: true; config: ResolvedFunConfig } | { ok: false; reason: 'not_found' | 'disabled' };

export type ChangeListener = (service: string, requestType: string) => void;

/** The defaults of `ConfigRegistryOptions`. */
export const CONFIG_REGISTRY_DEFAULTS = { cacheMax: 10_000 } as const;

export interface ConfigRegistryOptions {
  /** Capacity of the get_fast cache. Default 10 000 (CONFIG_REGISTRY_DEFAULTS). */
  cacheMax?: number;
  /** Receives exceptions thrown by onChange listeners (they never interrupt a registry change). */
  onListenerError?: (error: unknown) => void;
}

const NOT_FOUND: Lookup = Object.freeze({ ok: false, reason: 'not_found' });
const DISABLED: Lookup = Object.freeze({ ok: false, reason: 'disabled' });

interface Entry {
  readonly config: ResolvedFunConfig;
  /** The answer get() gives for this entry, built once. */
  readonly lookup: Lookup;
}

function entryFor(config: ResolvedFunConfig): Entry {
  return { config, lookup: config.disabled ? DISABLED : Object.freeze({ ok: true, config }) };
}

/** Injective (service, request_type) key: a length prefix keeps any pair of strings apart. */
function cacheKey(service: string, requestType: string): string {
  return `${service.length}:${service}${requestType}`;
}

type Versions = Map<string | null, Entry>;

export class ConfigRegistry {
  /** service → request_type → version → entry, all in insertion order. */
  readonly #services = new Map<string, Map<string, Versions>>();
  readonly #fast: LRUCache<string, Lookup>;
  readonly #listeners = new Set<ChangeListener>();
  readonly #onListenerError: ((error: unknown) => void) | undefined;
  #count = 0;

  constructor(options: ConfigRegistryOptions = {}) {
    this.#fast = new LRUCache<string, Lookup>({
      max: options.cacheMax ?? CONFIG_REGISTRY_DEFAULTS.cacheMax,
    });
    this.#onListenerError = options.onListenerError;
  }

  /** Inserts or replaces the config under (service, requestType, version). */
  add(config: ResolvedFunConfig): void {
    argChecker(config.args); // compiled and cached now, so requests find the checker ready
    const version = normalizeVersion(config.version);
    const stored = version === config.version ? config : Object.freeze({ ...config, version });
    let functions = this.#services.get(stored.service);
    if (functions === undefined) {
      functions = new Map();
      this.#services.set(stored.service, functions);
    }
    let versions = functions.get(stored.requestType);
    if (versions === undefined) {
      versions = new Map();
      functions.set(stored.requestType, versions);
    }
    if (!versions.has(version)) this.#count++;
    versions.set(version, entryFor(stored));
    this.#changed(stored.service, stored.requestType);
  }

  /** Exact lookup. A disabled config answers `disabled`. */
  get(service: string, requestType: string, version: string | null): Lookup {
    const entry = this.#services.get(service)?.get(requestType)?.get(normalizeVersion(version));
    return entry === undefined ? NOT_FOUND : entry.lookup;
  }

  /**
   * The config for a request without a version (ConfigDb.get_fast): disabled configs are ignored;
   * the highest enabled versioned config by semver wins, else the unversioned one.
   */
  getFast(service: string, requestType: string): Lookup {
    const versions = this.#services.get(service)?.get(requestType);
    // Unknown names are answered without touching the cache, so they cannot evict real entries.
    if (versions === undefined) return NOT_FOUND;
    const key = cacheKey(service, requestType);
    const cached = this.#fast.get(key);
    if (cached !== undefined) return cached;
    const best = ConfigRegistry.#latest(versions) ?? ConfigRegistry.#enabledUnversioned(versions);
    const result = best === undefined ? NOT_FOUND : best.lookup;
    this.#fast.set(key, result);
    return result;
  }

  /** The executor's rule: a request version (not null/""/"0.0.0") → get, else getFast. */
  resolve(service: string, requestType: string, version: string | null): Lookup {
    return version === null || version === '' || version === '0.0.0'
      ? this.getFast(service, requestType)
      : this.get(service, requestType, version);
  }

  /** The highest enabled versioned config (unversioned ones are ignored). */
  getLatest(service: string, requestType: string): Lookup {
    const versions = this.#services.get(service)?.get(requestType);
    const best = versions === undefined ? undefined : ConfigRegistry.#latest(versions);
    return best === undefined ? NOT_FOUND : best.lookup;
  }

  /** The stored config whether enabled or not (no lookup semantics). */
  peek(
    service: string,
    requestType: string,
    version: string | null,
  ): ResolvedFunConfig | undefined {
    return this.#services.get(service)?.get(requestType)?.get(normalizeVersion(version))?.config;
  }

  disable(service: string, requestType: string, version: string | null): boolean {
    return this.#setDisabled(service, requestType, version, true);
  }

  enable(service: string, requestType: string, version: string | null): boolean {
    return this.#setDisabled(service, requestType, version, false);
  }

  /** false when there was nothing under that key. */
  delete(service: string, requestType: string, version: string | null): boolean {
    const functions = this.#services.get(service);
    const versions = functions?.get(requestType);
    if (functions === undefined || versions === undefined) return false;
    if (!versions.delete(normalizeVersion(version))) return false;
    this.#count--;
    if (versions.size === 0) functions.delete(requestType);
    if (functions.size === 0) this.#services.delete(service);
    this.#changed(service, requestType);
    return true;
  }

  /** Removes every config of a service; returns how many were removed. */
  deleteService(service: string): number {
    const functions = this.#services.get(service);
    if (functions === undefined) return 0;
    this.#services.delete(service);
    let removed = 0;
    for (const [requestType, versions] of functions) {
      removed += versions.size;
      this.#count -= versions.size;
      this.#changed(service, requestType);
    }
    return removed;
  }

  clear(): void {
    const removed: [string, string][] = [];
    for (const [service, functions] of this.#services) {
      for (const requestType of functions.keys()) removed.push([service, requestType]);
    }
    this.#services.clear();
    this.#fast.clear();
    this.#count = 0;
    for (const [service, requestType] of removed) this.#notify(service, requestType);
  }

  /** Number of stored configs (every version counts). */
  count(): number {
    return this.#count;
  }

  services(): string[] {
    return [...this.#services.keys()];
  }

  /** `{service: {request_type: [versions]}}` (ConfigDb.get_all_functions), disabled ones included. */
  functions(): Record<string, Record<string, (string | null)[]>> {
    const out: Record<string, Record<string, (string | null)[]>> = Object.create(null) as Record<
      string,
      Record<string, (string | null)[]>
    >;
    for (const [service, functions] of this.#services) {
      const byType = Object.create(null) as Record<string, (string | null)[]>;
      for (const [requestType, versions] of functions) byType[requestType] = [...versions.keys()];
      out[service] = byType;
    }
    return out;
  }

  /** Every stored config, or those of one service, disabled ones included. */
  list(service?: string): ResolvedFunConfig[] {
    const out: ResolvedFunConfig[] = [];
    const collect = (functions: Map<string, Versions>): void => {
      for (const versions of functions.values())
        for (const entry of versions.values()) out.push(entry.config);
    };
    if (service === undefined) for (const functions of this.#services.values()) collect(functions);
    else {
      const functions = this.#services.get(service);
      if (functions !== undefined) collect(functions);
    }
    return out;
  }

  /** Called after every change to a (service, request_type). Returns an unsubscribe function. */
  onChange(listener: ChangeListener): () => void {
    const wrapped: ChangeListener = (service, requestType) => listener(service, requestType);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  #setDisabled(
    service: string,
    requestType: string,
    version: string | null,
    disabled: boolean,
  ): boolean {
    const versions = this.#services.get(service)?.get(requestType);
    const key = normalizeVersion(version);
    const entry = versions?.get(key);
    if (versions === undefined || entry === undefined) return false;
    if (entry.config.disabled !== disabled) {
      versions.set(key, entryFor(Object.freeze({ ...entry.config, disabled })));
      this.#changed(service, requestType);
    }
    return true;
  }

  #changed(service: string, requestType: string): void {
    this.#fast.delete(cacheKey(service, requestType));
    this.#notify(service, requestType);
  }

  #notify(service: string, requestType: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(service, requestType);
      } catch (error) {
        this.#onListenerError?.(error);
      }
    }
  }

  static #latest(versions: Versions): Entry | undefined {
    let best: Entry | undefined;
    for (const entry of versions.values()) {
      const { version, disabled } = entry.config;
      if (version === null || disabled) continue;
      // Strictly greater: among equal versions the first stored wins.
      if (best === undefined || compareVersions(version, best.config.version as string) > 0)
        best = entry;
    }
    return best;
  }

  static #enabledUnversioned(versions: Versions): Entry | undefined {
    const entry = versions.get(null);
    return entry === undefined || entry.config.disabled ? undefined : entry;
  }
}
