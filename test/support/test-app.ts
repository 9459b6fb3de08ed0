import {
  createGateway,
  defineChannel,
  error,
  ok,
  refuse,
  reply,
  stop,
  type ConnectHook,
  type Gateway,
  type GatewayOptions,
  type SocketOptions,
} from '../../src/index.js';
import { deferred, type Deferred } from './wait.js';

/** Assigns of the conformance app's sockets. */
export interface TestAssigns {
  token: string | null;
  params: Record<string, unknown>;
  userId: string | null;
  presenceKey?: string;
  presenceMeta?: Record<string, unknown>;
}

const slowJoins = new Map<string, Deferred<void>>();
function slowJoin(tag: string): Deferred<void> {
  let settled = slowJoins.get(tag);
  if (!settled) {
    settled = deferred();
    slowJoins.set(tag, settled);
  }
  return settled;
}

const heldJoins = new Map<string, Deferred<void>>();
function heldJoin(hold: string): Deferred<void> {
  let held = heldJoins.get(hold);
  if (!held) {
    held = deferred();
    heldJoins.set(hold, held);
  }
  return held;
}

/** Lets the `room:slowjoin` join with payload `{hold}` return (its reply: `{held: hold}`). */
export function releaseJoin(hold: string): void {
  heldJoin(hold).resolve();
}

/**
 * Resolves once the `room:slowjoin` join whose payload carried `{tag}` has returned its reply to
 * the gateway (the event to wait for instead of sleeping past its `ms`). The gateway handles the
 * settled join in the same turn's microtasks: do one round trip (a heartbeat) before asserting.
 */
export function slowJoinSettled(tag: string): Promise<void> {
  return slowJoin(tag).promise;
}

/**
 * The conformance app: the channels the Phoenix test app of the protocol spec had (§8 setup),
 * registered through the public channel API. Handler events are named by what they do.
 */
export const roomChannel = defineChannel<TestAssigns>({
  join(topic, payload, channel) {
    if (topic === 'room:deny') return error({ reason: 'unauthorized' });
    if (topic === 'room:crashjoin') throw new Error('join crashed on purpose');
    if (topic === 'room:reply') return ok({ joined: topic, params: payload });
    if (topic === 'room:slowjoin' && typeof payload === 'object' && payload !== null) {
      if ('hold' in payload) {
        // Held until the test calls releaseJoin(hold): a join exactly as slow as the test needs.
        const hold = String(payload.hold);
        return heldJoin(hold).promise.then(() => ok({ held: hold }));
      }
    }
    if (topic === 'room:slowjoin') {
      const ms =
        typeof payload === 'object' && payload !== null && 'ms' in payload
          ? Number(payload.ms)
          : 300;
      const tag =
        typeof payload === 'object' && payload !== null && 'tag' in payload
          ? String(payload.tag)
          : null;
      return new Promise((resolve) =>
        setTimeout(() => {
          resolve(ok({ slept: ms }));
          if (tag !== null) slowJoin(tag).resolve();
        }, ms),
      );
    }
    if (topic === 'room:afterjoin') {
      channel.push('welcome', {
        assigns_token: channel.socket.assigns.token,
        params: channel.socket.params,
      });
    }
    return undefined;
  },

  intercept: ['intercepted'],

  handleIn(event, payload, channel) {
    switch (event) {
      case 'echo':
        return ok(payload);
      case 'push':
        channel.push('pushed', payload);
        return undefined;
      case 'push_then_reply':
        channel.push('pushed', payload);
        return ok({ after: 'push' });
      case 'broadcast':
        channel.broadcast('bcast', payload);
        return ok();
      case 'broadcast_from':
        channel.broadcastFrom('bcast_from', payload);
        return ok();
      case 'intercepted':
        channel.broadcast('intercepted', payload);
        return undefined;
      case 'status_only':
        return reply('ok');
      case 'error_reply':
        return error({ reason: 'bad' });
      case 'custom_status':
        return reply('weird');
      case 'noreply':
        return undefined;
      case 'async': {
        const ref = channel.replyRef();
        setTimeout(() => channel.reply(ref, ok(payload)), 50);
        return undefined;
      }
      case 'slow': {
        const ms = Number((payload as { ms?: number }).ms ?? 100);
        return new Promise((resolve) => setTimeout(() => resolve(ok({ slept: ms })), ms));
      }
      case 'boom':
        throw new Error('boom');
      case 'async_boom':
        return Promise.reject(new Error('async boom'));
      case 'stop_normal':
        return stop('normal');
      case 'stop_shutdown_reply':
        return stop('shutdown', ok({ bye: true }));
      case 'stop_kaboom':
        return stop('kaboom');
      case 'bin':
        if (payload instanceof Uint8Array) {
          channel.push('bin_push', Uint8Array.of(0, 1));
          channel.broadcast('bin_bcast', Uint8Array.of(2, 3));
          return ok(Buffer.concat([payload, Uint8Array.of(255)]));
        }
        return ok(payload);
      case 'bin_reply_only':
        return ok(Uint8Array.of(9, 8, 7));
      case 'assign':
        channel.assign({ token: String((payload as { token?: unknown }).token) });
        return ok({ token: channel.assigns.token, socketToken: channel.socket.assigns.token });
      default:
        return error({ reason: `unknown event ${event}` });
    }
  },

  handleOut(event, payload, channel) {
    channel.push(event, { ...(payload as object), handled_out: true });
  },

  terminate(_reason, channel) {
    if (channel.topic === 'room:term1') channel.push('you_left', { message: 'bye!' });
  },
});

/**
 * Presence channel: join payload `{key, meta?}`. After the join it pushes `presence_state`, then
 * tracks the key (the usual Phoenix after_join); `update` replaces the meta, `untrack` removes it.
 */
export function presenceChannel(gateway: Gateway) {
  return defineChannel<TestAssigns>({
    join(_topic, payload, channel) {
      const { key, meta } = (payload ?? {}) as { key?: unknown; meta?: unknown };
      if (typeof key !== 'string') return error({ reason: 'key required' });
      channel.assign({
        presenceKey: key,
        presenceMeta: (meta as Record<string, unknown>) ?? { online_at: 1 },
      });
      return undefined;
    },
    afterJoin(channel) {
      channel.push('presence_state', gateway.presence.list(channel.topic));
      gateway.presence.track(channel, channel.assigns.presenceKey!, channel.assigns.presenceMeta);
    },
    handleIn(event, payload, channel) {
      const key = channel.assigns.presenceKey!;
      if (event === 'update') {
        gateway.presence.update(channel, key, (payload as { meta: Record<string, unknown> }).meta);
        return ok();
      }
      if (event === 'untrack') return ok({ untracked: gateway.presence.untrack(channel, key) });
      if (event === 'list') return ok(gateway.presence.list(channel.topic));
      return error({ reason: `unknown event ${event}` });
    },
  });
}

export const connectHook: ConnectHook<TestAssigns> = ({ params, authToken }) => {
  if (params.reject === 'true') return false;
  if (params.status === '429') return refuse(429, 'too many', { 'retry-after': '3' });
  if (params.crash === 'true') throw new Error('connect crashed on purpose');
  const userId = typeof params.user_id === 'string' ? params.user_id : null;
  return {
    assigns: { token: authToken, params: params, userId },
    id: userId === null ? null : `user:${userId}`,
  };
};

export interface TestApp {
  gateway: Gateway;
  port: number;
  url: string;
  wsUrl: (path?: string, query?: string) => string;
  httpUrl: (path: string, query?: string) => string;
  close: () => Promise<void>;
}

export interface TestAppOptions {
  port?: number;
  gateway?: Partial<GatewayOptions>;
  socket?: Partial<SocketOptions<TestAssigns>>;
  /** Applied to every mount (after its own options). */
  allMounts?: Partial<SocketOptions<TestAssigns>>;
}

/**
 * Starts the conformance app on a free port: `/socket` (auth token on, LongPoll window 1 s,
 * WebSocket idle timeout 3 s, check_origin `//allowed.example`), `/defaults` (all defaults),
 * `/limited` (max 1 channel) and `/noauth` (auth token off), like the spec's Phoenix test app.
 */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const gateway = createGateway({ logger: false, ...options.gateway });
  const presence = presenceChannel(gateway);
  const mounts = [
    gateway.socket<TestAssigns>('/socket', {
      connect: connectHook,
      checkOrigin: ['//allowed.example'],
      websocket: { idleTimeoutMs: 3_000 },
      longpoll: { windowMs: 1_000 },
      ...options.socket,
      ...options.allMounts,
    }),
    gateway.socket<TestAssigns>('/defaults', { connect: connectHook, ...options.allMounts }),
    gateway.socket<TestAssigns>('/limited', {
      connect: connectHook,
      maxChannels: 1,
      ...options.allMounts,
    }),
    gateway.socket<TestAssigns>('/noauth', {
      connect: connectHook,
      authToken: false,
      ...options.allMounts,
    }),
  ];
  for (const mount of mounts) {
    mount.channel('room:*', roomChannel).channel('presence:*', presence);
  }
  const address = await gateway.listen(options.port ?? 0, '127.0.0.1');
  const base = `127.0.0.1:${address.port}`;
  return {
    gateway,
    port: address.port,
    url: `http://${base}`,
    wsUrl: (path = '/socket/websocket', query = 'vsn=2.0.0') =>
      `ws://${base}${path}${query ? `?${query}` : ''}`,
    httpUrl: (path, query = '') => `http://${base}${path}${query ? `?${query}` : ''}`,
    close: () => gateway.close(),
  };
}

/**
 * How many LongPoll sessions of `gateway` hold a parked GET right now. A test waits on this
 * instead of sleeping "to let the GET park" (test-only introspection of private fields).
 */
export function parkedPolls(gateway: Gateway): number {
  interface Introspected {
    mounts: { longpoll: { sessions: Map<string, { parked: unknown }> } | null }[];
  }
  let parked = 0;
  for (const mount of (gateway as unknown as Introspected).mounts) {
    for (const session of mount.longpoll?.sessions.values() ?? []) {
      if (session.parked !== null) parked++;
    }
  }
  return parked;
}
