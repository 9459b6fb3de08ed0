import type { Logger } from 'pino';
import { withDeadline } from '../util/deadline.js';
import type { ServiceInstance } from '../genapi/types.js';
import type { RequestMeta } from '../worker/context.js';
import { functionKey, type ResolvedFunction, type ServiceDefinition } from '../worker/define.js';
import { DEADLINE_CODE, runAuthorize, runCall, runStream } from '../worker/runtime.js';
import type { StreamEvent, StreamIO } from '../worker/stream.js';
import type { Broadcaster } from '../worker/pushes.js';
import {
  transportFailure,
  type Authorization,
  type CallOutcome,
  type CallTarget,
  type ServiceBus,
  type StreamSink,
  type StreamStart,
} from './types.js';
import { CancelledError, InvalidArgumentError, InvalidStateError } from '../errors.js';
import { NO_PUSHES } from '../worker/runtime.js';

/**
 * What in-process handlers' `ctx.broadcast` / `ctx.disconnect` reach: the gateway's PubSub (every
 * gateway of the cluster once it joined one) and its disconnect. Arguments are checked as a NATS
 * worker's would be, so a handler behaves the same in-process and on NATS.
 */
export function localBroadcaster(target: {
  broadcast(topic: string, event: string, payload: unknown): void;
  disconnect(id: string): unknown;
}): Broadcaster {
  return {
    broadcast(topic, event, payload = {}) {
      if (typeof topic !== 'string')
        throw new InvalidArgumentError(`broadcast topic must be a string, got ${typeof topic}`);
      if (typeof event !== 'string' || event.length === 0)
        throw new InvalidArgumentError('broadcast event must be a non-empty string');
      target.broadcast(topic, event, payload);
    },
    disconnect(socketId) {
      if (typeof socketId !== 'string' || socketId.length === 0)
        throw new InvalidArgumentError('disconnect needs a non-empty socket id string');
      target.disconnect(socketId);
    },
  };
}

/**
 * Services registered in-process (`nodes: "local"`): the embedded default, and the same handlers
 * a NATS worker would run, through the same runtime (deadlines, streams with credit).
 */
export class LocalBus implements ServiceBus {
  private readonly services = new Map<
    string,
    { definition: ServiceDefinition; instance: ServiceInstance }
  >();

  /**
   * `pushes`: what handlers' `ctx.broadcast` / `ctx.disconnect` reach (see localBroadcaster);
   * `logger`: the parent of handlers' `ctx.logger` (default: silent).
   */
  constructor(
    private readonly pushes: Broadcaster = NO_PUSHES,
    private readonly logger?: Logger,
  ) {}

  register(definition: ServiceDefinition): void {
    if (this.services.has(definition.name))
      throw new InvalidStateError(`service ${definition.name} is already registered locally`);
    this.services.set(definition.name, {
      definition,
      instance: { id: 'local', service: definition.name, version: definition.version },
    });
  }

  unregister(name: string): boolean {
    return this.services.delete(name);
  }

  has(name: string): boolean {
    return this.services.has(name);
  }

  instances(service: string): readonly ServiceInstance[] {
    const entry = this.services.get(service);
    return entry ? [entry.instance] : [];
  }

  private find(target: CallTarget): ResolvedFunction | undefined {
    const { config } = target;
    return this.services
      .get(config.service)
      ?.definition.functions.get(functionKey(config.requestType, config.version));
  }

  async call(
    target: CallTarget,
    meta: RequestMeta,
    args: Record<string, unknown>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<CallOutcome> {
    const fn = this.find(target);
    if (!fn)
      return transportFailure(
        'no_responders',
        `no local function ${target.config.service}.${target.config.requestType}`,
      );
    return withDeadline(
      runCall(fn, args, meta, signal, this.pushes, this.logger).then((result): CallOutcome => {
        if (result.ok) return { ok: true, result: result.result };
        if (result.code === DEADLINE_CODE)
          return transportFailure('timeout', `local execution timed out after ${timeoutMs}ms`);
        return { ok: false, kind: 'business', message: result.error, code: result.code };
      }),
      timeoutMs,
      () => transportFailure('timeout', `local execution timed out after ${timeoutMs}ms`),
    );
  }

  async stream(
    target: CallTarget,
    meta: RequestMeta,
    args: Record<string, unknown>,
    startTimeoutMs: number,
    initialCredit: number,
    sink: StreamSink,
  ): Promise<StreamStart> {
    const fn = this.find(target);
    if (!fn)
      return {
        outcome: transportFailure(
          'no_responders',
          `no local function ${target.config.service}.${target.config.requestType}`,
        ),
        control: null,
      };
    let settleStart!: (outcome: CallOutcome) => void;
    const started = new Promise<CallOutcome>((resolve) => (settleStart = resolve));
    let live = false;
    const io: StreamIO = {
      start: (result) => {
        live = true;
        settleStart({ ok: true, result });
      },
      startError: (message, code) => settleStart({ ok: false, kind: 'business', message, code }),
      emit: (event: StreamEvent, data) => {
        // Delivered on a later turn, as over a network, so the start reply is handled first.
        queueMicrotask(() => {
          if (!live) return;
          if (event === 'chunk') sink.chunk(data);
          else {
            live = false;
            if (event === 'last') sink.last(data);
            else if (event === 'end') sink.end();
            else sink.error(String(data));
          }
        });
      },
    };
    const run = runStream(fn, args, meta, io, initialCredit, 0, this.pushes, this.logger);
    const outcome = await withDeadline(started, startTimeoutMs, () =>
      transportFailure('timeout', `stream did not start within ${startTimeoutMs}ms`),
    );
    const cancel = () => {
      live = false;
      run.stream.cancel('stream cancelled');
      run.controller.abort(new CancelledError('stream cancelled'));
    };
    if (!outcome.ok) {
      cancel();
      return { outcome, control: null };
    }
    return { outcome, control: { grant: (credit) => run.stream.grant(credit), cancel } };
  }

  async authorize(
    target: CallTarget,
    meta: RequestMeta,
    args: Record<string, unknown>,
  ): Promise<Authorization> {
    const fn = this.find(target);
    if (!fn) return 'unavailable';
    return (await runAuthorize(fn, args, meta, this.pushes, this.logger)) ? 'allowed' : 'denied';
  }
}
