/**
 * The load of the fault tests (issue 12): many clients, each calling `slowsvc`'s `slow` (real
 * work in a worker process) in a loop with a pause between calls, and a record of every call the
 * gateway handed to its NATS bus (which instance, what came back), so that a test can tell the
 * calls in flight on a sick worker from the others. test/genapi/fault-isolation.test.ts and
 * test/genapi/fault-gateway-nats.test.ts use it.
 */
import { expect, vi } from 'vitest';
import type { GenApiApp } from './genapi-app.js';
import { ApiClient, type ApiResponse, type ReplyPayload } from './genapi-client.js';
import { percentile, type FigureGoal } from './figures.js';
import { realTime } from './wait.js';
import type { CallOutcome, TransportFailure } from '../../src/bus/types.js';

/** Clients of a full-size fault test (the 200). */
export const CLIENTS = 200;
/** Each client waits about this long (±50 %) between its calls: a steady load, not a flood. */
export const PACE_MS = 400;
/** A call's bound in the test: the function's timeout (4 s in the worker processes) and then some. */
export const CALL_BOUND_MS = 15_000;
/** How long each call works in the worker: enough that a worker always holds some calls. */
export const WORK_MS = 150;
/** The bound: the service is whole again this soon after the fault ends. */
export const RECOVERY_MS = 3_000;

/** One call of the load, as its client saw it. */
export interface Sent {
  readonly client: number;
  readonly id: string;
  readonly ref: string;
  readonly sentAt: number;
  doneAt: number;
  push: ApiResponse | null;
  reply: ReplyPayload | null;
}

const call = (id: string) => ({
  request_id: id,
  service: 'slowsvc',
  request_type: 'slow',
  args: { ms: WORK_MS },
});

/** Connects `count` clients to the gateway, 20 at a time. */
export async function connectClients(gateway: GenApiApp, count: number): Promise<ApiClient[]> {
  const clients: ApiClient[] = [];
  for (let i = 0; i < count; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, (_, k) =>
        ApiClient.connect(gateway.wsUrl(`user_id=u${i + k}&device_id=d${i + k}`)),
      ),
    );
    clients.push(...batch);
  }
  return clients;
}

/** Clients each sending one call, waiting for its push and reply, pausing, and again. */
export class Load {
  readonly sent: Sent[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(private readonly clients: ApiClient[]) {
    this.loops = clients.map((client, i) => this.loop(client, i));
  }

  private async loop(client: ApiClient, index: number): Promise<void> {
    // Spread the clients' first calls over one pace.
    await realTime(Math.random() * PACE_MS, 'a steady load: the clients start apart');
    for (let n = 0; this.running; n++) {
      const id = `c${index}-${n}`;
      const ref = client.call(call(id));
      const entry: Sent = {
        client: index,
        id,
        ref,
        sentAt: performance.now(),
        doneAt: 0,
        push: null,
        reply: null,
      };
      this.sent.push(entry);
      await client.until(
        () => client.pushes(id).length > 0 && client.replies(ref).length > 0,
        `the push and reply of ${id}`,
        CALL_BOUND_MS,
      );
      entry.doneAt = performance.now();
      entry.push = client.pushes(id)[0]!;
      entry.reply = client.replies(ref)[0]!;
      await realTime(PACE_MS * (0.5 + Math.random()), 'a steady load: the pause between calls');
    }
  }

  /** Stops sending and waits for every call in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Calls that got exactly one push and one reply, the reply ok (checked after `stop`). */
  exactlyOnce(): void {
    for (const s of this.sent) {
      const client = this.clients[s.client]!;
      expect(client.pushes(s.id), s.id).toHaveLength(1);
      expect(client.replies(s.ref), s.id).toHaveLength(1);
      expect(s.reply).toEqual({ status: 'ok', response: 'slow' });
    }
  }

  /** Calls answered with an error push. */
  failed(): Sent[] {
    return this.sent.filter((s) => s.push !== null && !s.push.success);
  }

  /** Calls sent after `sentAfter` that `label`'s worker answered. */
  answeredBy(label: string, sentAfter: number): Sent[] {
    return this.sent.filter(
      (s) =>
        s.sentAt > sentAfter &&
        s.push?.success === true &&
        (s.push.result as { by?: unknown }).by === label,
    );
  }

  /** Round trips (ms) of the successful calls sent in [from, to). */
  roundTrips(from: number, to: number): { p50: number; p99: number; max: number } {
    const times = this.sent
      .filter((s) => s.sentAt >= from && s.sentAt < to && s.push?.success === true)
      .map((s) => s.doneAt - s.sentAt);
    return {
      p50: Math.round(percentile(times, 50)),
      p99: Math.round(percentile(times, 99)),
      max: Math.round(times.length === 0 ? 0 : Math.max(...times)),
    };
  }
}

/** One call the gateway handed to its NATS bus: to which instance, and what came back. */
export interface BusCall {
  readonly requestId: string;
  /** The instance it went to (null: the service's queue group). */
  readonly instance: string | null;
  readonly sentAt: number;
  doneAt: number;
  outcome: CallOutcome | null;
}

/** Failures where nothing ran (the gateway tries the next instance at once). */
const NOTHING_RAN = new Set<TransportFailure>(['no_responders', 'unavailable']);

/**
 * Every call the gateway's NATS bus makes, recorded by wrapping `bus.call` (what the executor
 * calls once per attempt on an instance). The calls "in flight on" an instance are those it was
 * sent and never answered: they ended in a failure other than "nothing ran there".
 */
export class BusCalls {
  readonly calls: BusCall[] = [];

  constructor(gateway: GenApiApp) {
    const bus = gateway.genApi.nats!.bus;
    const original = bus.call.bind(bus);
    vi.spyOn(bus, 'call').mockImplementation(async (target, meta, args, timeoutMs, signal) => {
      const entry: BusCall = {
        requestId: meta.requestId,
        instance: target.instance?.id ?? null,
        sentAt: performance.now(),
        doneAt: 0,
        outcome: null,
      };
      this.calls.push(entry);
      const outcome = await original(target, meta, args, timeoutMs, signal);
      entry.doneAt = performance.now();
      entry.outcome = outcome;
      return outcome;
    });
  }

  /**
   * Calls one of `instances` took and did not answer (timed out, lost with it, lost with NATS);
   * `null` stands for the queue group (calls sent when discovery knew no instance).
   */
  lostOn(...instances: (string | null)[]): BusCall[] {
    return this.calls.filter(
      (c) =>
        instances.includes(c.instance) &&
        c.outcome !== null &&
        !c.outcome.ok &&
        c.outcome.kind === 'transport' &&
        !NOTHING_RAN.has(c.outcome.reason),
    );
  }

  /**
   * Calls one of `instances` held at some time in [from, to]: sent to it before `to`, not ended
   * before `from`, and not refused where nothing ran. The bound on a fault's errors: whether
   * these are answered late or lost, nothing else may fail.
   */
  heldDuring(instances: (string | null)[], from: number, to: number): BusCall[] {
    return this.calls.filter(
      (c) =>
        instances.includes(c.instance) &&
        c.sentAt <= to &&
        (c.outcome === null || c.doneAt >= from) &&
        !(
          c.outcome?.ok === false &&
          c.outcome.kind === 'transport' &&
          NOTHING_RAN.has(c.outcome.reason)
        ),
    );
  }

  /** Calls that were waiting for an answer at `t` (sent before, ended after). */
  inFlightAt(t: number): BusCall[] {
    return this.calls.filter((c) => c.sentAt <= t && (c.outcome === null || c.doneAt >= t));
  }

  /** Attempts per request id (a call tried on a second instance has two). */
  attempts(requestId: string): BusCall[] {
    return this.calls.filter((c) => c.requestId === requestId);
  }
}

/** The round trips of the calls that succeeded in [from, to), as one figure. */
export function roundTripFigures(
  load: Load,
  from: number,
  to: number,
  window: string,
): Record<string, string> {
  const { p50, p99, max } = load.roundTrips(from, to);
  return { [`round trip ${window} (p50 / p99 / max)`]: `${p50} / ${p99} / ${max} ms` };
}

/** The bound on errors: at most the calls in flight on the sick part. */
export function errorsGoal(
  errors: number,
  inflight: number,
  what = 'errors',
  where = 'the sick worker',
): FigureGoal {
  return { goal: `${what} ≤ calls in flight on ${where}`, value: errors, limit: inflight };
}

/** The bound on recovery: `what` within RECOVERY_MS. */
export function recoveryGoal(ms: number, what: string): FigureGoal {
  return { goal: `${what} within 3 s`, value: Math.round(ms), limit: RECOVERY_MS, unit: 'ms' };
}
