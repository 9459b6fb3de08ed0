import type { Logger } from 'pino';
import type { Gateway } from '../gateway.js';
import type { GenApi } from '../genapi/gen-api.js';
import type { Channel } from '../channel/types.js';
import { HEALTH_RTT_TIMEOUT_MS } from '../admin/health.js';
import type { ResolvedDashboardOptions } from './options.js';
import { RequestWindow, type RequestSample } from './request-window.js';
import { takeSnapshot, type DashboardSnapshot } from './snapshot.js';

/** The event the dashboard channel pushes every interval. */
export const SNAPSHOT_EVENT = 'snapshot';

/** Subscribes to `genapi_request` telemetry; returns the unsubscribe. */
export type RequestEvents = (handler: (sample: RequestSample) => void) => () => void;

/** What the hub reads and listens to. */
export interface HubDeps {
  readonly gateway: Gateway;
  readonly genApi: GenApi;
  readonly options: ResolvedDashboardOptions;
  readonly requests: RequestEvents;
  readonly logger: Logger;
  /** Monotonic ms (the request window's seconds). Default performance.now. */
  readonly now?: () => number;
}

/**
 * The viewers of one gateway's dashboard and the one timer that serves them all: the first viewer
 * starts it (and the `genapi_request` subscription), the last one to leave stops both, so a
 * gateway nobody watches computes nothing. Each tick takes one snapshot and pushes it to every
 * viewer; the NATS round trip is measured in the background and shown from the previous tick.
 */
export class DashboardHub {
  private readonly viewers = new Set<Channel>();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private window: RequestWindow | null = null;
  private rttMs: number | null = null;
  private measuring = false;
  private readonly now: () => number;

  constructor(private readonly deps: HubDeps) {
    this.now = deps.now ?? (() => performance.now());
  }

  /** Viewers watching now. */
  get size(): number {
    return this.viewers.size;
  }

  /** Adds a viewer (a joined dashboard channel); returns the first snapshot for its join reply. */
  add(channel: Channel): DashboardSnapshot {
    this.viewers.add(channel);
    if (this.viewers.size === 1) this.start();
    return this.snapshot();
  }

  remove(channel: Channel): void {
    if (!this.viewers.delete(channel) || this.viewers.size > 0) return;
    this.stop();
  }

  /** Stops the timer and the subscription (the gateway closes). */
  close(): void {
    this.viewers.clear();
    this.stop();
  }

  private start(): void {
    const window = new RequestWindow(
      this.deps.options.windowMs,
      this.deps.options.maxFunctions,
      this.now,
    );
    this.window = window;
    this.unsubscribe = this.deps.requests((sample) => window.record(sample));
    this.timer = setInterval(() => this.tick(), this.deps.options.intervalMs);
    this.timer.unref();
    this.measureRtt();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.window = null;
    this.rttMs = null;
  }

  private snapshot(): DashboardSnapshot {
    return takeSnapshot({
      gateway: this.deps.gateway,
      genApi: this.deps.genApi,
      options: this.deps.options,
      requests: this.window!,
      viewers: this.viewers.size,
      natsRttMs: this.rttMs,
    });
  }

  private tick(): void {
    if (this.viewers.size === 0) return;
    let snapshot: DashboardSnapshot;
    try {
      snapshot = this.snapshot();
    } catch (err) {
      // A defect in reading some figure must not stop the timer: log it, try at the next tick.
      this.deps.logger.error({ err }, 'dashboard snapshot failed');
      return;
    }
    for (const viewer of this.viewers) viewer.push(SNAPSHOT_EVENT, snapshot);
    this.measureRtt();
  }

  private measureRtt(): void {
    const link = this.deps.genApi.nats;
    if (!link || this.measuring) return;
    this.measuring = true;
    link
      .rtt(HEALTH_RTT_TIMEOUT_MS)
      .then((rtt) => {
        if (this.timer !== null) this.rttMs = rtt === null ? null : Math.round(rtt * 100) / 100;
      })
      .catch(() => {
        this.rttMs = null;
      })
      .finally(() => {
        this.measuring = false;
      });
  }
}
