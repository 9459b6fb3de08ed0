import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { PubSub } from '../channel/pubsub.js';
import { guardJoin } from './join-guard.js';
import { ChannelRouter } from '../channel/router.js';
import type { Assigns, ChannelHandler } from '../channel/types.js';
import {
  resolveSocketOptions,
  type ResolvedSocketOptions,
  type SocketOptions,
} from '../config/socket-options.js';
import { compileCheckOrigin } from '../http/check-origin.js';
import { compileClientAddress } from '../http/client-ip.js';
import { ConnectionCaps } from './connection-caps.js';
import type { Presence } from '../presence/presence.js';
import type { Connection, TransportHost } from '../transport/host.js';
import { LongPollTransport } from '../transport/longpoll.js';
import type { SessionTokens } from '../transport/longpoll-token.js';
import { WebSocketTransport } from '../transport/websocket.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import type { SocketRegistry } from './registry.js';
import { authorize, originAllowed } from './handshake.js';
import { CLOSE, Session, type SessionContext, type SessionInit } from './session.js';
import type { GatewayStats } from './stats.js';
import type { Telemetry } from '../telemetry/events.js';

/** @internal What every mount of one gateway shares. */
export interface GatewayContext {
  readonly pubsub: PubSub;
  readonly presence: Presence;
  readonly wheel: TimerWheel;
  readonly logger: Logger;
  readonly stats: GatewayStats;
  readonly telemetry: Telemetry;
  readonly registry: SocketRegistry;
  readonly tokens: SessionTokens;
}

/**
 * One socket endpoint (Phoenix's `socket "/socket", UserSocket`): its options, connect hook and
 * channel routes, served over WebSocket at `<path>/websocket` and LongPoll at `<path>/longpoll`.
 */
export class SocketMount<A extends Assigns = Assigns> {
  /** @internal The options with defaults applied. */
  readonly options: ResolvedSocketOptions<A>;
  /** @internal Topic patterns to channel handlers. */
  readonly router: ChannelRouter<A>;
  /** @internal The compiled `checkOrigin`. */
  readonly originAllowed: (origin: string | undefined, req: IncomingMessage) => boolean;
  /** @internal The client's address: the peer, or what trusted proxies say (`trustedProxies`). */
  readonly clientAddress: (req: IncomingMessage) => string;
  /** @internal Connections in total, per IP and per user (`maxConnections*`). */
  readonly caps: ConnectionCaps;
  /** @internal */
  readonly websocket: WebSocketTransport<SessionInit<A>> | null;
  /** @internal */
  readonly longpoll: LongPollTransport<SessionInit<A>> | null;
  /** @internal */
  readonly logger: Logger;
  /** @internal */
  readonly gateway: GatewayContext;
  /** @internal Set by `stopAccepting()` and `close()`: the transports refuse new connections (503). */
  closed = false;
  private readonly sessions = new Set<Session<A>>();
  /** Told once the last session is gone (`whenEmpty`). */
  private emptyWaiters: (() => void)[] = [];
  private readonly sessionContext: SessionContext<A>;

  /** @internal Use `gateway.socket(path, options)`. */
  constructor(gateway: GatewayContext, path: string, options: SocketOptions<A> = {}) {
    this.gateway = gateway;
    this.options = resolveSocketOptions(path, options);
    this.router = new ChannelRouter<A>(this.options.maxTopicBytes);
    this.originAllowed = compileCheckOrigin(this.options.checkOrigin, this.options.publicHosts);
    this.clientAddress = compileClientAddress(this.options.trustedProxies);
    this.caps = new ConnectionCaps(this.options);
    this.logger = gateway.logger.child({ socket: this.options.path });
    const host = transportHost(this);
    this.websocket = this.options.websocket ? new WebSocketTransport(host) : null;
    this.longpoll = this.options.longpoll ? new LongPollTransport(host) : null;
    this.sessionContext = {
      router: this.router,
      pubsub: gateway.pubsub,
      presence: gateway.presence,
      wheel: gateway.wheel,
      logger: this.logger,
      stats: gateway.stats,
      telemetry: gateway.telemetry,
      maxChannels: this.options.maxChannels,
      joinTimeoutMs: this.options.joinTimeoutMs,
      maxQueuedFrames: this.options.maxQueuedFrames,
      messageRate: this.options.messageRate,
      inboundByteRate: this.options.inboundByteRate,
      maxBroadcastBytes: this.options.maxBroadcastBytes,
      refreshToken: this.options.refreshToken,
      onTeardown: (session) => {
        this.sessions.delete(session);
        this.gateway.registry.remove(session);
        this.caps.release(session);
        if (this.sessions.size === 0 && this.emptyWaiters.length > 0) {
          const waiters = this.emptyWaiters;
          this.emptyWaiters = [];
          for (const resolve of waiters) resolve();
        }
      },
    };
  }

  /** The mount path (`/socket`); the transports are served below it. */
  get path(): string {
    return this.options.path;
  }

  /** Routes topics matching `pattern` (`room:*` or an exact topic) to `handler`. */
  channel(pattern: string, handler: ChannelHandler<A>): this {
    const authorize = this.options.authorizeJoin;
    this.router.add(pattern, authorize === null ? handler : guardJoin(handler, authorize));
    return this;
  }

  /** @internal Called by the transports for each accepted connection. */
  createSession(connection: Connection, init: SessionInit<A>): Session<A> {
    const session = new Session(this.sessionContext, connection, init);
    this.caps.claim(init, session);
    this.sessions.add(session);
    this.gateway.registry.add(session);
    return session;
  }

  /** Sockets connected to this mount now. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * @internal Refuses new WebSocket upgrades and LongPoll sessions (503 with `STOPPING_REFUSAL`);
   * connected sockets go on (a drain closes them later).
   */
  stopAccepting(): void {
    this.closed = true;
  }

  /** @internal The sessions connected now, for a drain to close in batches. */
  openSessions(): Session<A>[] {
    return [...this.sessions];
  }

  /** @internal Resolves once no session is left (their transports closed them). */
  whenEmpty(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Stops accepting and closes every session with `code` (1012: the client reconnects elsewhere). */
  close(code: number = CLOSE.drain, reason = 'server shutting down'): void {
    this.closed = true;
    for (const session of [...this.sessions]) session.close(code, reason);
    this.websocket?.close();
    this.longpoll?.close();
  }
}

/**
 * What the transports of `mount` get from the socket layer (they sit below it and never import
 * it): its options, the handshake, its sessions, the close codes and the gateway's shared parts.
 */
function transportHost<A extends Assigns>(mount: SocketMount<A>): TransportHost<SessionInit<A>> {
  const { gateway } = mount;
  return {
    options: mount.options,
    get closed() {
      return mount.closed;
    },
    closeCodes: CLOSE,
    logger: gateway.logger,
    wheel: gateway.wheel,
    stats: gateway.stats,
    tokens: gateway.tokens,
    originAllowed: (req) => originAllowed(mount, req),
    authorize: (req, transport, path, query, authToken) =>
      authorize(mount, req, transport, path, query, authToken),
    createSession: (connection, init) => mount.createSession(connection, init),
  };
}
