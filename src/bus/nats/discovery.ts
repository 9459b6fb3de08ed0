import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { ServiceInstance } from '../../genapi/types.js';
import { META, PROTOCOL_VERSION } from '../../nats/headers.js';
import { isNoResponders } from '../../nats/request-errors.js';
import type { PeerAuth } from '../../nats/peer-auth.js';
import { LRUCache } from 'lru-cache';
import { checkInstance, type AnnouncedInstance, type InstanceRefusal } from './instance-check.js';

export interface DiscoveredInstance extends ServiceInstance {
  readonly configVersion: string | null;
  lastSeen: number;
}

/** Worker discovery through the NATS Services API (`NatsGatewayOptions.discovery`). */
export interface DiscoveryOptions {
  /** How often `$SRV.PING` is sent. Default 1000 ms. */
  intervalMs?: number;
  /**
   * An instance not seen for this long leaves the selection. Default 2500 ms: one that stops
   * answering misses three pings and is gone about 3 s later (the promise is 5 s). Answers to
   * requests count as sightings too (see `alive`), so a busy instance that answers its pings late
   * is not dropped while it serves traffic.
   */
  ttlMs?: number;
  /** How long one ping collects answers (all of them: a busy instance may answer late). Default 250 ms. */
  pingWaitMs?: number;
}

export const DISCOVERY_DEFAULTS: Required<DiscoveryOptions> = {
  intervalMs: 1_000,
  ttlMs: 2_500,
  pingWaitMs: 250,
};

export interface DiscoveryListener {
  added?(instance: DiscoveredInstance): void;
  removed?(instance: DiscoveredInstance): void;
  /** The instance now reports another config version. */
  configChanged?(instance: DiscoveredInstance): void;
}

interface PingResponse {
  name?: unknown;
  id?: unknown;
  version?: unknown;
  metadata?: Record<string, unknown> | null;
}

/**
 * Live worker instances, learned through the NATS Services API: a `$SRV.PING` every interval,
 * keeping the gen_api services with our subject prefix. Instances not seen within the TTL (or
 * reported dead by a caller) leave the selection.
 */
export class Discovery {
  private readonly byId = new Map<string, DiscoveredInstance>();
  private readonly byService = new Map<string, readonly ServiceInstance[]>();
  private readonly listeners: DiscoveryListener[] = [];
  private readonly intervalMs: number;
  private readonly ttlMs: number;
  private readonly pingWaitMs: number;
  private timer: NodeJS.Timeout | null = null;
  private pinging: Promise<void> | null = null;
  private refusedCount = 0;
  /** Instance ids already logged as refused (bounded: answers are untrusted input). */
  private readonly refusedIds = new LRUCache<string, InstanceRefusal>({ max: 1_024 });

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    options: DiscoveryOptions,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    /** Proofs made with the push token; null when the network is trusted. */
    private readonly auth: PeerAuth | null = null,
  ) {
    this.intervalMs = options.intervalMs ?? DISCOVERY_DEFAULTS.intervalMs;
    this.ttlMs = options.ttlMs ?? DISCOVERY_DEFAULTS.ttlMs;
    this.pingWaitMs = options.pingWaitMs ?? DISCOVERY_DEFAULTS.pingWaitMs;
  }

  on(listener: DiscoveryListener): void {
    this.listeners.push(listener);
  }

  /** Pings once (so a fresh gateway knows the fleet at once), then every interval. */
  async start(): Promise<void> {
    await this.ping();
    this.timer = setInterval(() => this.pingInBackground(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  instances(service: string): readonly ServiceInstance[] {
    return this.byService.get(service) ?? [];
  }

  all(): DiscoveredInstance[] {
    return [...this.byId.values()];
  }

  get(id: string): DiscoveredInstance | undefined {
    return this.byId.get(id);
  }

  /**
   * The instance just answered a request or sent a stream message: it is alive whether or not it
   * answered the last pings (a worker busy with traffic may answer them late).
   */
  alive(id: string): void {
    const instance = this.byId.get(id);
    if (instance) instance.lastSeen = this.now();
  }

  /** A caller found the instance dead (no responders on its direct subject): drop it now. */
  forget(id: string): void {
    const instance = this.byId.get(id);
    if (!instance) return;
    this.byId.delete(id);
    this.rebuild(instance.service);
    this.logger.info(
      { service: instance.service, instance: id },
      'worker instance gone (no responders)',
    );
    for (const listener of this.listeners) listener.removed?.(instance);
  }

  /** A round nobody waits for: a failure is logged (the next round tries again). */
  pingInBackground(): void {
    this.ping().catch((err: unknown) =>
      this.logger.warn({ err }, 'discovery round failed; retrying at the next interval'),
    );
  }

  /** One discovery round; concurrent calls share it. */
  ping(): Promise<void> {
    this.pinging ??= this.round().finally(() => {
      this.pinging = null;
    });
    return this.pinging;
  }

  private async round(): Promise<void> {
    const seen: PingResponse[] = [];
    try {
      // The whole window, not "until 50 ms pass without an answer": one busy instance answering
      // a little after the others must not count as missing.
      const replies = await this.nc.requestMany('$SRV.PING', undefined, {
        strategy: 'timer',
        maxWait: this.pingWaitMs,
      });
      for await (const reply of replies) {
        try {
          seen.push(JSON.parse(reply.string()) as PingResponse);
        } catch {
          // Not a micro service answer: ignore.
        }
      }
    } catch (err) {
      // No micro service at all answers with no responders; a closed connection ends discovery.
      if (!isNoResponders(err)) {
        this.logger.debug(
          { err: err instanceof Error ? err.message : String(err) },
          'discovery ping failed',
        );
        return;
      }
    }
    const admitted = await this.admit(seen);
    const now = this.now();
    const touched = new Set<string>();
    // admit() kept only gen_api instances of our prefix, read into AnnouncedInstance.
    for (const identity of admitted) {
      const { configVersion } = identity;
      const existing = this.byId.get(identity.id);
      if (existing) {
        existing.lastSeen = now;
        if (existing.configVersion !== configVersion) {
          const updated: DiscoveredInstance = { ...existing, configVersion };
          this.byId.set(identity.id, updated);
          touched.add(updated.service);
          for (const listener of this.listeners) listener.configChanged?.(updated);
        }
        continue;
      }
      const instance: DiscoveredInstance = {
        id: identity.id,
        service: identity.name,
        version: identity.version,
        configVersion,
        lastSeen: now,
      };
      this.byId.set(instance.id, instance);
      touched.add(instance.service);
      this.logger.info(
        { service: instance.service, instance: instance.id, version: instance.version },
        'worker instance discovered',
      );
      for (const listener of this.listeners) listener.added?.(instance);
    }
    for (const instance of [...this.byId.values()]) {
      if (now - instance.lastSeen <= this.ttlMs) continue;
      this.byId.delete(instance.id);
      touched.add(instance.service);
      this.logger.info(
        { service: instance.service, instance: instance.id },
        'worker instance expired',
      );
      for (const listener of this.listeners) listener.removed?.(instance);
    }
    for (const service of touched) this.rebuild(service);
  }

  /**
   * The answers worth believing: gen_api instances of our prefix, and new ones only once
   * `checkInstance` admits them (known ones were checked when they arrived).
   */
  private async admit(seen: readonly PingResponse[]): Promise<AnnouncedInstance[]> {
    const known: AnnouncedInstance[] = [];
    const fresh: { announced: AnnouncedInstance; check: Promise<InstanceRefusal | null> }[] = [];
    for (const identity of seen) {
      const metadata = identity.metadata ?? {};
      if (metadata[META.protocol] !== PROTOCOL_VERSION || metadata[META.prefix] !== this.prefix)
        continue;
      if (typeof identity.id !== 'string' || typeof identity.name !== 'string') continue;
      const configVersion = metadata[META.configVersion];
      const announced: AnnouncedInstance = {
        id: identity.id,
        name: identity.name,
        version: typeof identity.version === 'string' ? identity.version : '0.0.0',
        configVersion: typeof configVersion === 'string' ? configVersion : null,
        metadata,
      };
      const existing = this.byId.get(identity.id);
      if (
        existing &&
        existing.service === identity.name &&
        existing.version === identity.version &&
        (this.auth === null || existing.configVersion === configVersion)
      ) {
        known.push(announced);
        continue;
      }
      fresh.push({
        announced,
        check: checkInstance(this.nc, announced, this.auth, this.pingWaitMs),
      });
    }
    for (const { announced, check } of fresh) {
      const refusal = await check;
      if (refusal === null) known.push(announced);
      else this.refuse(announced, refusal);
    }
    return known;
  }

  /** Counted, and logged once per instance id (a flood of fake answers cannot flood the log). */
  private refuse(identity: AnnouncedInstance, reason: InstanceRefusal): void {
    this.refusedCount++;
    const { id } = identity;
    if (this.refusedIds.has(id)) return;
    this.refusedIds.set(id, reason);
    this.logger.warn(
      { service: identity.name, instance: id, version: identity.version, reason },
      'worker instance refused: ' +
        (reason === 'not_reachable' || reason === 'mismatch'
          ? 'it does not answer on its own service subject (NATS permissions, or a fake)'
          : 'its discovery metadata is not signed with the push token'),
    );
  }

  /** Instances announced but not admitted, since start. */
  get refused(): number {
    return this.refusedCount;
  }

  private rebuild(service: string): void {
    const list = [...this.byId.values()].filter((instance) => instance.service === service);
    if (list.length === 0) this.byService.delete(service);
    else this.byService.set(service, list);
  }
}
