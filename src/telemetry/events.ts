import type { Logger } from 'pino';

/** The transports a socket connects over (the same names as `TransportName`). */
export type TelemetryTransport = 'websocket' | 'longpoll';

/**
 * `socket_connected`: a connect attempt went through the connect pipeline (Phoenix's
 * `[:phoenix, :socket_connected]`). `result: 'error'` carries the HTTP status and reason.
 */
export interface SocketConnectedEvent {
  /** The transport the client connects over. */
  readonly transport: TelemetryTransport;
  /** The `vsn` query param as sent ("" when absent). */
  readonly vsn: string;
  /** The serializer the vsn selects: `json` (V1/V2 JSON), `binary` (V2 binary frames), or `none` (unsupported vsn). */
  readonly serializer: 'json' | 'binary' | 'none';
  /** Whether the connection was accepted. */
  readonly result: 'ok' | 'error';
  /** Time spent in the connect pipeline (query, origin, caps, limits, connect hook), ms. */
  readonly durationMs: number;
  /** The request path, e.g. `/socket/websocket`. */
  readonly path: string;
  /** On `error`: the HTTP status the client got (403, 429, 500, 503 ...). */
  readonly status?: number;
  /** On `error`: why it was refused. */
  readonly reason?: string;
}

/** `socket_closed`: a socket ended, whoever closed it. */
export interface SocketClosedEvent {
  /** The socket's transport. */
  readonly transport: TelemetryTransport;
  /** The close code when the gateway closed it (1008 flood, 1012 drain ...); absent when the client went away. */
  readonly code?: number;
  /** The close reason when the gateway closed it. */
  readonly reason?: string;
}

/** `channel_joined`: the reply to a join (Phoenix's `[:phoenix, :channel_joined]`). */
export interface ChannelJoinedEvent {
  /** The topic asked for. */
  readonly topic: string;
  /** `ok` when the channel joined. */
  readonly result: 'ok' | 'error';
  /** On `error`: the reply's `reason` (`unauthorized`, `unmatched topic`, `join timeout`, `too many channels joined` ...). */
  readonly reason?: string;
  /** From the join frame to its reply, ms. */
  readonly durationMs: number;
  /** The socket's transport. */
  readonly transport: TelemetryTransport;
}

/** `channel_left`: a joined channel ended (leave, socket close, crash, stop, duplicate join). */
export interface ChannelLeftEvent {
  /** The channel's topic. */
  readonly topic: string;
}

/** `channel_handled_in`: a channel's `handleIn` finished (Phoenix's `[:phoenix, :channel_handled_in]`). */
export interface ChannelHandledInEvent {
  /** The channel's topic. */
  readonly topic: string;
  /** The client event. */
  readonly event: string;
  /** The handler's time, including an async handler's wait, ms. */
  readonly durationMs: number;
}

/**
 * How a gen_api request ended: `ok`; `error` (the function failed, or a defect); `timeout` (no
 * answer in time, or a stream went idle); `unavailable` (no worker, breaker open, bulkhead full,
 * NATS down, a stream cut by a drain: `can_retry`); `rate_limited`; `denied` (permission, or a before hook rejected it);
 * `invalid` (arguments); `not_found` (unknown or disabled function); `cancelled` (the client left
 * while its stream ran).
 */
export type GenApiOutcome =
  | 'ok'
  | 'error'
  | 'timeout'
  | 'unavailable'
  | 'rate_limited'
  | 'denied'
  | 'invalid'
  | 'not_found'
  | 'cancelled';

/** `genapi_request`: a gen_api request was answered (a stream: when it ended). */
export interface GenApiRequestEvent {
  /** The service asked for. */
  readonly service: string;
  /** The function (`request_type`) asked for. */
  readonly function: string;
  /** How it ended. */
  readonly outcome: GenApiOutcome;
  /** From the request to its last push (a stream: to its end), ms. */
  readonly durationMs: number;
  /** True for a `stream` function that started relaying. */
  readonly stream: boolean;
  /** The worker instance that answered, when known. */
  readonly instance?: string;
}

/** `socket_drain`: one batch of a graceful drain closed `count` sockets (Phoenix's `[:phoenix, :socket_drain]`). */
export interface SocketDrainEvent {
  /** Sockets closed in this batch. */
  readonly count: number;
  /** Sockets the drain started with. */
  readonly total: number;
  /** This batch's number, from 0. */
  readonly index: number;
  /** The pause between batches, ms. */
  readonly intervalMs: number;
}

/** Every telemetry event by name: the contract handlers rely on (README "Telemetry"). */
export interface TelemetryEvents {
  /** See `SocketConnectedEvent`. */
  socket_connected: SocketConnectedEvent;
  /** See `SocketClosedEvent`. */
  socket_closed: SocketClosedEvent;
  /** See `ChannelJoinedEvent`. */
  channel_joined: ChannelJoinedEvent;
  /** See `ChannelLeftEvent`. */
  channel_left: ChannelLeftEvent;
  /** See `ChannelHandledInEvent`. */
  channel_handled_in: ChannelHandledInEvent;
  /** See `GenApiRequestEvent`. */
  genapi_request: GenApiRequestEvent;
  /** See `SocketDrainEvent`. */
  socket_drain: SocketDrainEvent;
}

/** The name of a telemetry event. */
export type TelemetryEventName = keyof TelemetryEvents;

/** A handler of event `N`: called synchronously where the event happens; keep it cheap. */
export type TelemetryHandler<N extends TelemetryEventName> = (
  event: TelemetryEvents[N],
  name: N,
) => void;

type HandlerList = ((event: never, name: never) => void)[];

/**
 * In-process telemetry, the equivalent of Erlang's `:telemetry`: `on(name, handler)` attaches a
 * handler, `has(name)` tells the hot path whether to build the event at all.
 * A handler that throws is logged once and detached, and never breaks the code that emitted.
 */
export class Telemetry {
  /** Handlers by event name; an absent name has none (the emitter's cheap check). */
  private readonly handlers = new Map<TelemetryEventName, HandlerList>();

  /** @internal The gateway creates it (`gateway.telemetry`). */
  constructor(private readonly logger: Logger) {}

  /** Attaches `handler` to event `name`; returns the function that detaches it. */
  on<N extends TelemetryEventName>(name: N, handler: TelemetryHandler<N>): () => void {
    // Copy on write: an emit in progress keeps iterating the list it started with.
    const list = [...(this.handlers.get(name) ?? []), handler as HandlerList[number]];
    this.handlers.set(name, list);
    return () => this.detach(name, handler);
  }

  /** True when event `name` has a handler: emitters skip building the event otherwise. */
  has(name: TelemetryEventName): boolean {
    return this.handlers.has(name);
  }

  /** @internal Calls every handler of `name` with `event`. Never throws. */
  emit<N extends TelemetryEventName>(name: N, event: TelemetryEvents[N]): void {
    const list = this.handlers.get(name);
    if (list === undefined) return;
    for (const handler of list) {
      try {
        (handler as TelemetryHandler<N>)(event, name);
      } catch (err) {
        // As :telemetry does: a failing handler is detached, so it fails (and logs) only once.
        this.detach(name, handler);
        this.logger.error({ err, event: name }, 'telemetry handler failed and was detached');
      }
    }
  }

  private detach(name: TelemetryEventName, handler: HandlerList[number]): void {
    const list = this.handlers.get(name);
    if (list === undefined) return;
    const at = list.indexOf(handler);
    if (at < 0) return;
    const rest = [...list.slice(0, at), ...list.slice(at + 1)];
    if (rest.length === 0) this.handlers.delete(name);
    else this.handlers.set(name, rest);
  }
}
