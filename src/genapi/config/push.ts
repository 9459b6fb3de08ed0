/**
 * Config push — PhoenixGenApi's PushConfig + ConfigReceiver (spec §6.3, push token §8.3), without
 * transport: the NATS side hands decoded payloads to `ConfigReceiver.receive`.
 *
 * Differences from PhoenixGenApi:
 * - the fun_configs' service name is always overwritten with the push's service (PhoenixGenApi
 *   rejects a push whose fun_configs name another service);
 * - functions that an earlier push/pull of the same service registered and that the new one no
 *   longer contains (or no longer contains validly) are deleted from the registry (PhoenixGenApi
 *   never removes them). Functions registered directly on the registry are never deleted here.
 */
import { timingSafeEqual } from 'node:crypto';
import type { ResolvedFunConfig } from '../types.js';
import { isPlainObject } from './arg-spec.js';
import type { FailedConfigs } from './failed.js';
import type { ConfigRegistry } from './registry.js';
import { ERR, normalizeVersion, validateFunConfig } from './validate.js';

export interface PushConfig {
  service: string;
  /** The version of this set of configs; a push with the stored version is skipped. */
  config_version: string;
  fun_configs: unknown[];
  push_token?: string | null;
  /** The pushing instance (used as the origin of rejected configs). */
  instance_id?: string;
  service_version?: string;
}

export type PushResult =
  | {
      status: 'accepted';
      service: string;
      config_version: string;
      accepted: { request_type: string; version: string | null }[];
      rejected: { request_type: unknown; version: unknown; errors: string[] }[];
    }
  | { status: 'skipped'; service: string; reason: 'version_matches' | 'older_than_live' }
  | {
      status: 'error';
      error: 'invalid_push_config' | 'validation_failed' | 'invalid_push_token' | 'all_invalid';
      messages: string[];
    };

export interface ConfigReceiverOptions {
  /**
   * When set, every push must be authenticated: signed with this token (checked by the NATS side,
   * which passes `authenticated`) or carrying it as `push_token` (PhoenixGenApi's form).
   * null/undefined: no token required.
   */
  pushToken?: string | null;
  nodesDefault: 'local' | 'nats';
  hookNames?: ReadonlySet<string>;
}

export interface ReceiveOptions {
  /** Apply even when the stored config_version equals the pushed one. */
  force?: boolean;
  /** Recorded with rejected configs. Default 'push'. */
  source?: 'push' | 'pull';
  /** Recorded with rejected configs. Default: the push's instance_id, else null. */
  origin?: string;
  /**
   * The message carrying the config was signed with the push token and the signature checked
   * (protocol/nats.md §10): the body's `push_token` is then not required.
   */
  authenticated?: boolean;
}

export const PUSH_ERR = {
  notObject: 'push config must be an object',
  service: 'service must be a non-empty string',
  configVersion: 'config_version must be a non-empty string',
  funConfigs: 'fun_configs must be a non-empty list',
  pushToken: 'invalid push token',
} as const;

/** A function this receiver registered: what to delete when a later push drops it. */
interface Owned {
  readonly requestType: string;
  readonly version: string | null;
  /** Identity of the registered config (kept by registry disable/enable, not by direct re-adds). */
  readonly source: ResolvedFunConfig['source'];
}

function functionKey(requestType: string, version: string | null): string {
  return JSON.stringify([requestType, version]);
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

export class ConfigReceiver {
  readonly #registry: ConfigRegistry;
  readonly #failed: FailedConfigs;
  readonly #token: Buffer | null;
  readonly #nodesDefault: 'local' | 'nats';
  readonly #hookNames: ReadonlySet<string> | undefined;
  /** service → stored config_version. */
  readonly #versions = new Map<string, string>();
  /** service → function key → what the last accepted push/pull registered. */
  readonly #owned = new Map<string, Map<string, Owned>>();

  constructor(registry: ConfigRegistry, failed: FailedConfigs, options: ConfigReceiverOptions) {
    this.#registry = registry;
    this.#failed = failed;
    const token = options.pushToken;
    // An empty configured token is still "configured": it rejects every push (fail closed).
    this.#token = token === null || token === undefined ? null : Buffer.from(token, 'utf8');
    this.#nodesDefault = options.nodesDefault;
    this.#hookNames = options.hookNames;
  }

  receive(raw: unknown, options: ReceiveOptions = {}): PushResult {
    // 1. decode
    if (!isPlainObject(raw))
      return { status: 'error', error: 'invalid_push_config', messages: [PUSH_ERR.notObject] };

    // 2. structure
    const messages: string[] = [];
    const { service, config_version: configVersion, fun_configs: funConfigs } = raw;
    if (!isNonEmptyString(service)) messages.push(PUSH_ERR.service);
    if (!isNonEmptyString(configVersion)) messages.push(PUSH_ERR.configVersion);
    if (!Array.isArray(funConfigs) || funConfigs.length === 0) messages.push(PUSH_ERR.funConfigs);
    if (messages.length > 0) return { status: 'error', error: 'validation_failed', messages };
    const svc = service as string;
    const version = configVersion as string;
    const items = funConfigs as unknown[];

    // 3. push token
    if (options.authenticated !== true && !this.#tokenAccepted(raw.push_token)) {
      return { status: 'error', error: 'invalid_push_token', messages: [PUSH_ERR.pushToken] };
    }

    // 4. same version → skipped
    if (options.force !== true && this.#versions.get(svc) === version) {
      return { status: 'skipped', service: svc, reason: 'version_matches' };
    }

    // 5. validate each fun_config
    const source = options.source ?? 'push';
    const origin = options.origin ?? (typeof raw.instance_id === 'string' ? raw.instance_id : null);
    const valid = new Map<string, ResolvedFunConfig>();
    const rejected: { request_type: unknown; version: unknown; errors: string[] }[] = [];
    const allMessages: string[] = [];
    items.forEach((item, index) => {
      let errors: string[];
      let recorded: unknown = item;
      if (!isPlainObject(item)) {
        errors = [ERR.notObject];
      } else {
        const enforced = { ...item, service: svc, version: normalizeVersion(item.version) };
        recorded = enforced;
        const result = validateFunConfig(enforced, {
          nodesDefault: this.#nodesDefault,
          hookNames: this.#hookNames,
        });
        if (result.ok) {
          const key = functionKey(result.config.requestType, result.config.version);
          if (!valid.has(key)) {
            valid.set(key, result.config);
            return;
          }
          errors = [
            `duplicate fun_config for request_type ${JSON.stringify(result.config.requestType)} and version ${JSON.stringify(result.config.version)}`,
          ];
        } else {
          errors = result.errors;
        }
      }
      const fields = isPlainObject(item) ? item : {};
      rejected.push({
        request_type: fields.request_type ?? null,
        version: fields.version ?? null,
        errors,
      });
      for (const error of errors) allMessages.push(`fun_configs[${index}]: ${error}`);
      this.#failed.record(recorded, errors, source, origin);
    });
    if (valid.size === 0) return { status: 'error', error: 'all_invalid', messages: allMessages };

    // 6. register the valid ones, then drop what the previous push/pull registered and this one lacks
    const owned = new Map<string, Owned>();
    const accepted: { request_type: string; version: string | null }[] = [];
    for (const [key, config] of valid) {
      this.#registry.add(config);
      owned.set(key, {
        requestType: config.requestType,
        version: config.version,
        source: config.source,
      });
      accepted.push({ request_type: config.requestType, version: config.version });
    }
    const previous = this.#owned.get(svc);
    if (previous !== undefined) {
      for (const [key, old] of previous) {
        if (owned.has(key)) continue;
        // Only if the registry still holds what we registered (not a config added directly since).
        if (this.#registry.peek(svc, old.requestType, old.version)?.source === old.source) {
          this.#registry.delete(svc, old.requestType, old.version);
        }
      }
    }
    this.#owned.set(svc, owned);

    // 7. store the version
    this.#versions.set(svc, version);
    return { status: 'accepted', service: svc, config_version: version, accepted, rejected };
  }

  /** Compares a service's stored config_version with `configVersion`. */
  verify(service: string, configVersion: string): 'matched' | 'mismatch' | 'not_found' {
    const stored = this.#versions.get(service);
    if (stored === undefined) return 'not_found';
    return stored === configVersion ? 'matched' : 'mismatch';
  }

  /** `{service: config_version}` of every service accepted so far. */
  pushedServices(): Record<string, string> {
    const out = Object.create(null) as Record<string, string>;
    for (const [service, version] of this.#versions) out[service] = version;
    return out;
  }

  /**
   * Forgets a service's stored config_version, so its next push is applied even with the same
   * version. Its functions stay registered (as in PhoenixGenApi), and the next push or pull still
   * replaces them. false when the service was unknown.
   */
  forget(service: string): boolean {
    return this.#versions.delete(service);
  }

  #tokenAccepted(candidate: unknown): boolean {
    const expected = this.#token;
    if (expected === null) return true;
    if (typeof candidate !== 'string' || candidate.length === 0) return false;
    const given = Buffer.from(candidate, 'utf8');
    if (given.length !== expected.length) {
      // Spend the same time as a real comparison; only the length leaks.
      timingSafeEqual(expected, expected);
      return false;
    }
    return timingSafeEqual(given, expected);
  }
}
