import type { ServiceInstance } from '../genapi/types.js';
import type { RequestMeta } from '../worker/context.js';
import { functionKey, type ResolvedFunction, type ServiceDefinition } from '../worker/define.js';
import { DEADLINE_CODE, runAuthorize, runCall, runStream } from '../worker/runtime.js';
import type { StreamEvent, StreamIO } from '../worker/stream.js';
import {
  transportFailure,
  type Authorization,
  type CallOutcome,
  type CallTarget,
  type ServiceBus,
  type StreamSink,
  type StreamStart,
} from './types.js';
import { CancelledError, InvalidStateError } from '../errors.js';

/**
 * Services registered in-process (`nodes: "local"`): the embedded default, and the same handlers
 * a NATS worker would run, through the same runtime (deadlines, streams with credit).
 */
export class LocalBus implements ServiceBus {
  private readonly services = new Map<
    string,
    { definition: ServiceDefinition; instance: ServiceInstance }
  >();

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
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<CallOutcome>((resolve) => {
      timer = setTimeout(
        () =>
          resolve(transportFailure('timeout', `local execution timed out after ${timeoutMs}ms`)),
        timeoutMs,
      );
    });
    try {
      const outcome = await Promise.race([
        runCall(fn, args, meta, signal).then((result): CallOutcome => {
          if (result.ok) return { ok: true, result: result.result };
          if (result.code === DEADLINE_CODE)
            return transportFailure('timeout', `local execution timed out after ${timeoutMs}ms`);
          return { ok: false, kind: 'business', message: result.error, code: result.code };
        }),
        timedOut,
      ]);
      return outcome;
    } finally {
      clearTimeout(timer);
    }
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
    const run = runStream(fn, args, meta, io, initialCredit);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      started,
      new Promise<CallOutcome>((resolve) => {
        timer = setTimeout(
          () =>
            resolve(transportFailure('timeout', `stream did not start within ${startTimeoutMs}ms`)),
          startTimeoutMs,
        );
      }),
    ]);
    clearTimeout(timer);
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
    return (await runAuthorize(fn, args, meta)) ? 'allowed' : 'denied';
  }
}
