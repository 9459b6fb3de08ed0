/**
 * Minimal ambient types for the `phoenix` npm client (it ships no types), covering what the
 * end-to-end tests use. `phoenix-1.6` and `phoenix-1.7` are npm aliases of older releases with
 * the same API (they lack `authToken`, which the tests only pass to 1.8).
 */
declare module 'phoenix' {
  /** A WebSocket-like transport class: `ws`'s WebSocket, or the client's own LongPoll. */
  export type TransportConstructor = new (endPoint: string, protocols?: string[]) => unknown;

  export interface StorageLike {
    getItem(key: string): string | null;
    setItem(key: string, value: string): void;
    removeItem(key: string): void;
  }

  export interface SocketOptions {
    transport?: TransportConstructor;
    params?: Record<string, unknown> | (() => Record<string, unknown>);
    /** phoenix >= 1.8 only. */
    authToken?: string | (() => string);
    longPollFallbackMs?: number;
    timeout?: number;
    heartbeatIntervalMs?: number;
    reconnectAfterMs?: (tries: number) => number;
    rejoinAfterMs?: (tries: number) => number;
    longpollerTimeout?: number;
    logger?: (kind: string, msg: string, data: unknown) => void;
    debug?: boolean;
    binaryType?: string;
    vsn?: string;
    sessionStorage?: StorageLike;
  }

  /** What the client passes to `onClose` callbacks (a CloseEvent, or LongPoll's plain object). */
  export interface CloseEventLike {
    readonly code: number;
    readonly reason?: string;
    readonly wasClean?: boolean;
  }

  /** A decoded server message as `onMessage` callbacks see it. */
  export interface Message {
    readonly join_ref: string | null;
    readonly ref: string | null;
    readonly topic: string;
    readonly event: string;
    readonly payload: unknown;
  }

  export type PushStatus = 'ok' | 'error' | 'timeout' | (string & {});

  export class Push {
    receive(status: PushStatus, callback: (response: unknown) => void): Push;
    readonly ref: string | null;
  }

  export class Channel {
    readonly topic: string;
    /** "closed" | "errored" | "joined" | "joining" | "leaving" */
    readonly state: string;
    join(timeout?: number): Push;
    leave(timeout?: number): Push;
    push(event: string, payload?: object | ArrayBuffer, timeout?: number): Push;
    on(
      event: string,
      callback: (payload: unknown, ref: string | null, joinRef: string | null) => void,
    ): number;
    off(event: string, ref?: number): void;
    onClose(callback: (payload: unknown, ref: string | null, joinRef: string | null) => void): void;
    onError(callback: (reason: unknown) => void): number;
    joinRef(): string | null;
  }

  export class Socket {
    constructor(endPoint: string, opts?: SocketOptions);
    /** The transport class in use; the LongPoll fallback replaces it. */
    transport: TransportConstructor;
    readonly channels: Channel[];
    connect(): void;
    disconnect(callback?: () => void, code?: number, reason?: string): void;
    channel(topic: string, params?: object | (() => object)): Channel;
    onOpen(callback: () => void): string;
    onClose(callback: (event: CloseEventLike) => void): string;
    onError(callback: (error: unknown) => void): string;
    onMessage(callback: (message: Message) => void): string;
    off(refs: string[]): void;
    isConnected(): boolean;
    connectionState(): string;
    endPointURL(): string;
    ping(callback: (rttMs: number) => void): boolean;
    makeRef(): string;
  }

  export class LongPoll {
    constructor(endPoint: string, protocols?: string[]);
  }

  export type PresenceMeta = Record<string, unknown> & { phx_ref: string; phx_ref_prev?: string };
  export interface PresenceEntry {
    metas: PresenceMeta[];
  }
  export type PresenceStateMap = Record<string, PresenceEntry>;

  export class Presence {
    constructor(channel: Channel, opts?: { events?: { state: string; diff: string } });
    onJoin(
      callback: (key: string, current: PresenceEntry | undefined, newPres: PresenceEntry) => void,
    ): void;
    onLeave(callback: (key: string, current: PresenceEntry, leftPres: PresenceEntry) => void): void;
    onSync(callback: () => void): void;
    list(): PresenceEntry[];
    list<T>(by: (key: string, presence: PresenceEntry) => T): T[];
    readonly state: PresenceStateMap;
  }
}

declare module 'phoenix-1.6' {
  export { Socket, Channel, Push, LongPoll, Presence } from 'phoenix';
}

declare module 'phoenix-1.7' {
  export { Socket, Channel, Push, LongPoll, Presence } from 'phoenix';
}
