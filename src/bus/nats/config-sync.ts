import {
  headers as natsHeaders,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { ConfigReceiver, PushResult } from '../../genapi/config/push.js';
import { H } from '../../nats/headers.js';
import type { PushAck } from '../../nats/messages.js';
import type { Subjects } from '../../nats/subjects.js';
import { AUTH_HEADER, NONCE_HEADER, PeerAuth, type PeerAuthFailure } from '../../nats/peer-auth.js';
import { compareVersions } from '../../genapi/config/semver.js';
import type { Discovery, DiscoveredInstance } from './discovery.js';
import type { Requester } from './requester.js';

/** Config pulls from workers (`NatsGatewayOptions.sync`). */
export interface ConfigSyncOptions {
  /** Periodic pull of every known service's config. Default 30 000 ms. */
  pullIntervalMs?: number;
  /** Backoff ceiling after failed pulls. Default 300 000 ms. */
  maxPullIntervalMs?: number;
  /** Timeout of one pull request. Default 2 000 ms. */
  pullTimeoutMs?: number;
}

/** What the periodic pull is doing (health reports, PhoenixGenApi's ConfigPuller.status). */
export interface ConfigSyncStatus {
  /** The configured interval of periodic pulls. */
  pullIntervalMs: number;
  /** Consecutive failed periodic pulls (0: healthy); the next one waits pullIntervalMs·2^failures, capped. */
  failures: number;
  /** Epoch ms of the next periodic pull (null: stopped). */
  nextPullAt: number | null;
  /** The last periodic or manual pull of every service: when, and whether every pull succeeded. */
  lastPull: { at: number; ok: boolean } | null;
}

export const CONFIG_SYNC_DEFAULTS: Required<ConfigSyncOptions> = {
  pullIntervalMs: 30_000,
  maxPullIntervalMs: 300_000,
  pullTimeoutMs: 2_000,
};

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** Configs from NATS always run on NATS, whatever they say. */
function onNats(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object') return raw;
  const push = raw as { fun_configs?: unknown };
  if (Array.isArray(push.fun_configs)) {
    push.fun_configs = push.fun_configs.map((config: unknown) =>
      config !== null && typeof config === 'object' ? { ...config, nodes: 'nats' } : config,
    );
  }
  return raw;
}

/**
 * Keeps the gateway's function configs in step with the workers: pushes (every gateway receives
 * each one on `<prefix>.config.push` and answers with its result), pulls from newly seen
 * instances whose config version the gateway does not hold, and a periodic pull with exponential
 * backoff after failures.
 *
 * During a rolling deploy old and new instances run side by side with different configs. The
 * gateway follows the newest deployment version among the live instances: it pulls from those,
 * and skips pushes from older ones (unless forced), so the config does not flip between them.
 */
export class ConfigSync {
  private readonly pushSub: Subscription;
  private readonly pulling = new Map<string, Promise<boolean>>();
  private timer: NodeJS.Timeout | null = null;
  private nextPullAt: number | null = null;
  private lastPull: { at: number; ok: boolean } | null = null;
  private failures = 0;
  private readonly pullIntervalMs: number;
  private readonly maxPullIntervalMs: number;
  private readonly pullTimeoutMs: number;

  constructor(
    nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly receiver: ConfigReceiver,
    private readonly requester: Requester,
    private readonly gatewayId: string,
    private readonly discovery: Discovery,
    private readonly isLocal: (service: string) => boolean,
    private readonly logger: Logger,
    options: ConfigSyncOptions = {},
    /** Signatures made with the push token; null when the network is trusted. */
    private readonly auth: PeerAuth | null = null,
  ) {
    this.pullIntervalMs = options.pullIntervalMs ?? CONFIG_SYNC_DEFAULTS.pullIntervalMs;
    this.maxPullIntervalMs = options.maxPullIntervalMs ?? CONFIG_SYNC_DEFAULTS.maxPullIntervalMs;
    this.pullTimeoutMs = options.pullTimeoutMs ?? CONFIG_SYNC_DEFAULTS.pullTimeoutMs;
    this.pushSub = nc.subscribe(subjects.configPushWildcard, {
      callback: (err, msg) => (err ? undefined : this.onPush(msg)),
    });
  }

  start(): void {
    this.schedule(this.pullIntervalMs);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.nextPullAt = null;
    this.pushSub.unsubscribe();
  }

  status(): ConfigSyncStatus {
    return {
      pullIntervalMs: this.pullIntervalMs,
      failures: this.failures,
      nextPullAt: this.nextPullAt,
      lastPull: this.lastPull,
    };
  }

  /** The live instance whose config counts: the newest deployment version (null: none live). */
  private authority(service: string): DiscoveredInstance | null {
    let best: DiscoveredInstance | null = null;
    for (const instance of this.discovery.all()) {
      if (instance.service !== service) continue;
      if (best === null || compareVersions(instance.version, best.version) > 0) best = instance;
    }
    return best;
  }

  /** A live instance of `service` runs a newer deployment than `version`. */
  private outdated(service: string, version: string): boolean {
    const authority = this.authority(service);
    return authority !== null && compareVersions(version, authority.version) < 0;
  }

  /** Discovery saw an instance: pull its config unless we hold it or a newer deployment is live. */
  instanceSeen(instance: DiscoveredInstance): Promise<void> {
    if (
      instance.configVersion !== null &&
      this.receiver.verify(instance.service, instance.configVersion) === 'matched'
    )
      return Promise.resolve();
    if (this.outdated(instance.service, instance.version)) return Promise.resolve();
    const key = `${instance.service}@${instance.configVersion ?? '?'}`;
    let pull = this.pulling.get(key);
    if (pull === undefined) {
      pull = this.pull(
        this.subjects.instanceConfig(instance.service, instance.id),
        instance.service,
        instance.id,
      ).finally(() => this.pulling.delete(key));
      this.pulling.set(key, pull);
    }
    return pull.then(() => undefined);
  }

  /**
   * Refreshes every live service from its newest instance when its config version differs from
   * the one held (unknown versions are always pulled); true when every pull succeeded. `force`
   * (PhoenixGenApi's force_pull) pulls every service and re-applies even an equal version, e.g.
   * to restore functions disabled or deleted on this gateway. Manual pulls leave the periodic
   * schedule alone (PhoenixGenApi started one more timer chain per call).
   */
  async pullAll(options: { force?: boolean } = {}): Promise<boolean> {
    const force = options.force === true;
    const services = new Set(this.discovery.all().map((instance) => instance.service));
    const pulls: Promise<boolean>[] = [];
    for (const service of services) {
      const authority = this.authority(service);
      if (!authority) continue;
      if (
        !force &&
        authority.configVersion !== null &&
        this.receiver.verify(service, authority.configVersion) === 'matched'
      )
        continue;
      pulls.push(
        this.pull(
          this.subjects.instanceConfig(service, authority.id),
          service,
          authority.id,
          force,
        ),
      );
    }
    const ok = (await Promise.all(pulls)).every(Boolean);
    this.lastPull = { at: Date.now(), ok };
    return ok;
  }

  private schedule(delayMs: number): void {
    this.nextPullAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.periodic().catch((err: unknown) => {
        // pull() logs and counts its own failures; this is a defect elsewhere in the round.
        // Keep pulling: the next round is what recovers.
        this.logger.error({ err }, 'config pull round failed');
        if (this.timer !== null) this.schedule(this.maxPullIntervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  /** The periodic pull; after failures the interval doubles per failure up to maxPullIntervalMs. */
  private async periodic(): Promise<void> {
    const ok = await this.pullAll();
    if (ok) {
      if (this.failures > 0) this.logger.info({ after: this.failures }, 'config pull recovered');
      this.failures = 0;
    } else {
      this.failures++;
    }
    const delay =
      this.failures === 0
        ? this.pullIntervalMs
        : Math.min(this.pullIntervalMs * 2 ** this.failures, this.maxPullIntervalMs);
    if (this.failures > 0)
      this.logger.warn(
        { failures: this.failures, nextInMs: delay },
        'config pull failed; backing off',
      );
    if (this.timer !== null) this.schedule(delay);
  }

  private async pull(
    subject: string,
    service: string,
    origin: string | null,
    force = false,
  ): Promise<boolean> {
    if (this.isLocal(service)) return true;
    try {
      const h = natsHeaders();
      const nonce = this.auth === null ? null : PeerAuth.nonce();
      if (nonce !== null) h.set(NONCE_HEADER, nonce);
      const reply = await this.requester.request(subject, EMPTY, h, this.pullTimeoutMs);
      const failure =
        this.auth === null || nonce === null
          ? null
          : this.auth.verifyConfig(subject, nonce, reply.data, reply.headers?.get(AUTH_HEADER));
      const raw = onNats(JSON.parse(reply.string()));
      const result: PushResult =
        failure !== null && failure !== 'unsigned'
          ? this.refusedSignature(failure)
          : this.receiver.receive(raw, {
              source: 'pull',
              force,
              authenticated: this.auth !== null && failure === null,
              ...(origin === null ? {} : { origin }),
            });
      this.report('pull', service, result);
      return result.status !== 'error';
    } catch (err) {
      this.logger.warn({ service, subject, err: (err as Error).message }, 'config pull failed');
      return false;
    }
  }

  private onPush(msg: Msg): void {
    let result: PushResult;
    try {
      const failure =
        this.auth === null
          ? null
          : this.auth.verifyPush(msg.subject, msg.data, msg.headers?.get(AUTH_HEADER));
      const raw: unknown = JSON.parse(msg.string());
      const { service, service_version: version } = (raw ?? {}) as {
        service?: unknown;
        service_version?: unknown;
      };
      const force = msg.headers?.get(H.force) === 'true';
      if (failure !== null && failure !== 'unsigned') {
        result = this.refusedSignature(failure);
      } else if (service !== msg.subject.slice(this.subjects.configPush('').length)) {
        // The subject names the service, and NATS permissions are granted per subject.
        result = {
          status: 'error',
          error: 'validation_failed',
          messages: [`a push for service ${String(service)} must be sent to its own subject`],
        };
      } else if (typeof service === 'string' && this.isLocal(service)) {
        result = {
          status: 'error',
          error: 'validation_failed',
          messages: [`service ${service} runs in-process on this gateway`],
        };
      } else if (
        !force &&
        typeof service === 'string' &&
        typeof version === 'string' &&
        this.outdated(service, version)
      ) {
        result = { status: 'skipped', service, reason: 'older_than_live' };
      } else {
        // Unsigned pushes still pass with the token in the body (PhoenixGenApi's push_token).
        result = this.receiver.receive(onNats(raw), {
          source: 'push',
          force,
          authenticated: this.auth !== null && failure === null,
        });
      }
    } catch {
      result = {
        status: 'error',
        error: 'invalid_push_config',
        messages: ['push body is not JSON'],
      };
    }
    this.report('push', 'service' in result ? result.service : '?', result);
    if (msg.reply) {
      const ack: PushAck = { gateway: this.gatewayId, ...result };
      msg.respond(encoder.encode(JSON.stringify(ack)));
    }
  }

  private refusedSignature(failure: PeerAuthFailure): PushResult {
    return {
      status: 'error',
      error: 'invalid_push_token',
      messages: [
        failure === 'expired'
          ? 'push signature expired (older than maxPushAgeMs, or clocks apart)'
          : 'push signature invalid',
      ],
    };
  }

  private report(source: 'push' | 'pull', service: string, result: PushResult): void {
    if (result.status === 'accepted') {
      this.logger.info(
        {
          source,
          service,
          version: result.config_version,
          accepted: result.accepted.length,
          rejected: result.rejected.length,
        },
        'config applied',
      );
      if (result.rejected.length > 0)
        this.logger.warn(
          { source, service, rejected: result.rejected },
          'some function configs were rejected',
        );
    } else if (result.status === 'error') {
      this.logger.error(
        { source, service, error: result.error, messages: result.messages },
        'config refused',
      );
    }
  }
}
