import { randomBytes } from 'node:crypto';
import {
  headers as natsHeaders,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import { readHeaders } from '../../nats/header-reader.js';
import type { Logger } from 'pino';
import type { ServiceInstance } from '../../genapi/types.js';
import { ERROR_CODES, H } from '../../nats/headers.js';
import type { Subjects } from '../../nats/subjects.js';
import type { RequestMeta } from '../../worker/context.js';
import type {
  Authorization,
  CallOutcome,
  CallTarget,
  ServiceBus,
  StreamSink,
  StreamStart,
} from '../types.js';
import {
  NOT_JSON,
  endAttempt,
  failureOutcome,
  readJson,
  readReply,
  requestHeaders,
} from './call-messages.js';
import type { Discovery } from './discovery.js';
import { RequestFailure, type Requester } from './requester.js';
import { startAttemptSpan } from '../../tracing/call-span.js';
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

/** A stream on its way: events may arrive before the start reply is handled, so they wait. */
interface LiveStream {
  readonly id: string;
  readonly sink: StreamSink;
  phase: 'starting' | 'live' | 'done';
  expectedSeq: number;
  held: Msg[] | null;
  control: string | null;
  instanceId: string | null;
  /** Chunks as RawJson (see ServiceBus.call's `raw`). */
  readonly raw: boolean;
}

/**
 * Functions on NATS workers: request/reply with the gen_api headers, instance-directed subjects
 * when an instance is chosen (the queue-group subject otherwise), streams over a per-gateway data
 * subject with credit-based flow control, and the workers' permission endpoints.
 */
export class NatsBus implements ServiceBus {
  private readonly streams = new Map<string, LiveStream>();
  private readonly dataSub: Subscription;
  private streamCounter = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly requester: Requester,
    private readonly discovery: Discovery,
    private readonly gatewayId: string,
    private readonly logger: Logger,
  ) {
    this.dataSub = nc.subscribe(subjects.streamDataWildcard(gatewayId), {
      callback: (err, msg) => (err ? undefined : this.onStreamData(msg)),
    });
  }

  instances(service: string): readonly ServiceInstance[] {
    return this.discovery.instances(service);
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  private subjectFor(target: CallTarget): string {
    const { config, instance } = target;
    return instance === null
      ? this.subjects.fn(config.service, config.requestType, config.version)
      : this.subjects.instanceFn(config.service, instance.id, config.requestType, config.version);
  }

  /** No responders on an instance's own subject means that instance is gone. */
  private noteFailure(target: CallTarget, outcome: CallOutcome): void {
    if (
      !outcome.ok &&
      outcome.kind === 'transport' &&
      outcome.reason === 'no_responders' &&
      target.instance
    ) {
      this.discovery.forget(target.instance.id);
    }
  }

  async call(
    target: CallTarget,
    meta: RequestMeta,
    args: Record<string, unknown>,
    timeoutMs: number,
    signal?: AbortSignal,
    raw = false,
  ): Promise<CallOutcome> {
    let outcome: CallOutcome;
    const subject = this.subjectFor(target);
    const h = requestHeaders(meta, timeoutMs);
    const span = startAttemptSpan(meta, 'call', subject, target.instance?.id ?? null, h);
    let reply: Msg | null = null;
    try {
      reply = await this.requester.request(
        subject,
        encoder.encode(JSON.stringify(args)),
        h,
        timeoutMs,
        signal,
        target.instance?.id ?? null,
      );
      outcome = readReply(reply, raw);
      // Any answer from an instance proves it alive, pings or not.
      if (target.instance) this.discovery.alive(target.instance.id);
    } catch (err) {
      outcome = failureOutcome(err);
    }
    endAttempt(span, outcome, reply);
    this.noteFailure(target, outcome);
    return outcome;
  }

  async authorize(
    target: CallTarget,
    meta: RequestMeta,
    args: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Authorization> {
    const { config, instance } = target;
    const subject =
      instance === null
        ? this.subjects.perm(config.service, config.requestType, config.version)
        : this.subjects.instancePerm(
            config.service,
            instance.id,
            config.requestType,
            config.version,
          );
    let outcome: CallOutcome;
    const h = requestHeaders(meta, timeoutMs);
    const span = startAttemptSpan(meta, 'permission', subject, instance?.id ?? null, h);
    let reply: Msg | null = null;
    try {
      // Tagged with the instance, as calls are: when discovery loses it, the check fails at once
      // (instance_lost) and moves to the next instance instead of waiting out its timeout.
      reply = await this.requester.request(
        subject,
        encoder.encode(JSON.stringify(args)),
        h,
        timeoutMs,
        undefined,
        instance?.id ?? null,
      );
      outcome = readReply(reply);
    } catch (err) {
      outcome = failureOutcome(err);
    }
    endAttempt(span, outcome, reply);
    this.noteFailure(target, outcome);
    if (outcome.ok) return outcome.result === true ? 'allowed' : 'denied';
    // Fail-closed, except when nobody could even be asked: then another instance may answer.
    if (
      outcome.kind === 'transport' &&
      outcome.reason !== 'timeout' &&
      outcome.reason !== 'cancelled'
    )
      return 'unavailable';
    return 'denied';
  }

  async stream(
    target: CallTarget,
    meta: RequestMeta,
    args: Record<string, unknown>,
    startTimeoutMs: number,
    initialCredit: number,
    sink: StreamSink,
    raw = false,
  ): Promise<StreamStart> {
    // Unguessable: every worker may publish to `<p>.gw.*.s.*`, so a worker of another service
    // must not be able to aim chunks at this stream (protocol/nats.md §10).
    const id = `${(++this.streamCounter).toString(36)}${randomBytes(12).toString('base64url')}`;
    const live: LiveStream = {
      id,
      sink,
      phase: 'starting',
      expectedSeq: 1,
      held: [],
      control: null,
      instanceId: target.instance?.id ?? null,
      raw,
    };
    this.streams.set(id, live);
    const h = requestHeaders(meta, startTimeoutMs);
    h.set(H.streamSubject, this.subjects.streamData(this.gatewayId, id));
    h.set(H.streamId, id);
    h.set(H.streamCredit, String(initialCredit));
    const subject = this.subjectFor(target);
    const span = startAttemptSpan(meta, 'call', subject, live.instanceId, h);
    let outcome: CallOutcome;
    let control: string | null = null;
    let reply: Msg | null = null;
    try {
      reply = await this.requester.request(
        subject,
        encoder.encode(JSON.stringify(args)),
        h,
        startTimeoutMs,
      );
      outcome = readReply(reply);
      control = reply.headers?.get(H.streamControl) || null;
    } catch (err) {
      outcome = failureOutcome(err);
    }
    // The attempt is the stream's start; the stream itself is the request span's to time.
    endAttempt(span, outcome, reply);
    this.noteFailure(target, outcome);
    if (
      !outcome.ok &&
      outcome.kind === 'transport' &&
      outcome.reason === 'timeout' &&
      target.instance
    ) {
      // No start reply in time: the control subject is known by construction, so stop the worker.
      live.control = this.subjects.streamControl(target.config.service, target.instance.id, id);
      this.sendControl(live, 'cancel', '');
    }
    // The worker names where credit goes; only its own service's control subjects are accepted,
    // so a reply cannot make the gateway publish elsewhere.
    if (
      control !== null &&
      !control.startsWith(this.subjects.streamControlPrefix(target.config.service))
    )
      control = null;
    if (!outcome.ok || control === null) {
      this.streams.delete(id);
      if (outcome.ok)
        outcome = {
          ok: false,
          kind: 'business',
          message: 'stream start reply without Genapi-Stream-Control',
          code: ERROR_CODES.failed,
        };
      return { outcome, control: null };
    }
    live.control = control;
    live.phase = 'live';
    const held = live.held ?? [];
    live.held = null;
    // Events that raced the start reply, in order (the sink holds them until its start is out).
    for (const msg of held) this.deliver(live, msg);
    return {
      outcome,
      control: {
        grant: (credit) => this.sendControl(live, 'credit', String(credit)),
        cancel: () => {
          if (live.phase === 'done') return;
          this.sendControl(live, 'cancel', '');
          this.finish(live);
        },
      },
    };
  }

  /**
   * The instance went away (discovery lost it): its calls in flight fail now instead of waiting
   * for their timeout, and its streams end.
   */
  instanceLost(instanceId: string): void {
    // Its calls fail only after one round trip to the server: a call published after the worker's
    // subscription went away gets its own "no responders" (nothing ran, so the executor tries the
    // next instance), and the server sends that before it answers our flush. What still waits
    // after the round trip was in the worker's hands, and fails as instance_lost. The flush goes
    // out after this turn's batched publishes (the requester publishes on setImmediate).
    const failWaiting = (): void => {
      this.requester.failTagged(
        instanceId,
        new RequestFailure('instance_lost', `worker instance ${instanceId} is gone`),
      );
    };
    setImmediate(() => {
      this.nc.flush().then(failWaiting, failWaiting);
    });
    for (const live of [...this.streams.values()]) {
      if (live.instanceId !== instanceId || live.phase !== 'live') continue;
      this.finish(live);
      live.sink.error('worker instance lost');
    }
  }

  close(): void {
    for (const live of [...this.streams.values()]) {
      if (live.phase === 'live') {
        this.sendControl(live, 'cancel', '');
        this.finish(live);
        live.sink.error('gateway shutting down');
      }
    }
    this.streams.clear();
    this.dataSub.unsubscribe();
  }

  private sendControl(live: LiveStream, kind: 'credit' | 'cancel', body: string): void {
    if (live.control === null || live.phase === 'done') return;
    const h = natsHeaders();
    h.set(H.control, kind);
    try {
      this.nc.publish(live.control, body === '' ? EMPTY : encoder.encode(body), { headers: h });
    } catch (err) {
      this.logger.debug(
        { err: (err as Error).message, stream: live.id },
        'stream control not sent',
      );
    }
  }

  private finish(live: LiveStream): void {
    live.phase = 'done';
    this.streams.delete(live.id);
  }

  private onStreamData(msg: Msg): void {
    const id = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const live = this.streams.get(id);
    if (!live) return;
    if (live.phase === 'starting') live.held?.push(msg);
    else if (live.phase === 'live') this.deliver(live, msg);
  }

  private deliver(live: LiveStream, msg: Msg): void {
    if (live.phase !== 'live') return;
    if (live.instanceId !== null) this.discovery.alive(live.instanceId);
    const headers = readHeaders(msg);
    const seq = Number(headers.get(H.streamSeq));
    if (seq !== live.expectedSeq) {
      // A lost message (NATS core is at-most-once, e.g. across a reconnect): never skip silently.
      this.sendControl(live, 'cancel', '');
      this.finish(live);
      live.sink.error(`stream interrupted: expected message ${live.expectedSeq}, got ${seq}`);
      return;
    }
    live.expectedSeq++;
    const event = headers.get(H.streamEvent);
    if (event === 'chunk' || event === 'last') {
      const data = msg.data.length === 0 ? null : readJson(decoder.decode(msg.data), live.raw);
      if (data === NOT_JSON) {
        this.finish(live);
        live.sink.error('stream chunk is not JSON');
        return;
      }
      if (event === 'chunk') live.sink.chunk(data);
      else {
        this.finish(live);
        live.sink.last(data);
      }
    } else if (event === 'end') {
      this.finish(live);
      live.sink.end();
    } else {
      this.finish(live);
      live.sink.error(headers.get(H.serviceError) || `unknown stream event ${String(event)}`);
    }
  }
}
