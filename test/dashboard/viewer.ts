/**
 * A dashboard viewer over the real `phoenix` client (WebSocket transport over `ws`): connects to
 * the admin socket mount, joins `admin:dashboard` and keeps every snapshot, so tests wait for one
 * that shows what they did. And `upgradeStatus`: the HTTP answer to a raw WebSocket upgrade, for
 * refusals (the phoenix client only sees "error" and reconnects).
 */
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import type { DashboardSnapshot } from '../../src/dashboard/snapshot.js';
import { replyOf, type PushReply } from '../support/phoenix-client.js';
import { until, WAIT_MS } from '../support/wait.js';

export interface Viewer {
  readonly socket: Socket;
  readonly channel: Channel;
  /** The join reply (its response is the first snapshot). */
  readonly join: PushReply;
  /** Every snapshot so far: the join reply's, then the pushes. */
  readonly snapshots: DashboardSnapshot[];
  /** The first snapshot from now on that satisfies `test`. */
  next(test: (snapshot: DashboardSnapshot) => boolean, label: string): Promise<DashboardSnapshot>;
  close(): void;
}

export async function connectViewer(
  port: number,
  options: { token?: string; params?: Record<string, string>; path?: string } = {},
): Promise<Viewer> {
  const socket = new Socket(`ws://127.0.0.1:${port}${options.path ?? '/admin/socket'}`, {
    transport: WebSocket as unknown as TransportConstructor,
    ...(options.token === undefined ? {} : { authToken: options.token }),
    params: options.params ?? {},
    reconnectAfterMs: () => 60_000,
  });
  const snapshots: DashboardSnapshot[] = [];
  socket.connect();
  const channel = socket.channel('admin:dashboard', {});
  channel.on('snapshot', (payload) => snapshots.push(payload as DashboardSnapshot));
  const join = await replyOf(channel.join());
  if (join.status === 'ok') snapshots.unshift(join.response as DashboardSnapshot);
  return {
    socket,
    channel,
    join,
    snapshots,
    async next(test, label) {
      const from = snapshots.length;
      return until(() => snapshots.slice(from).find(test), `a snapshot with ${label}`, WAIT_MS);
    },
    close: () => socket.disconnect(),
  };
}

/** `base64url.bearer.phx.<token>`: how the phoenix client carries `authToken`. */
export function bearerProtocol(token: string): string {
  return `base64url.bearer.phx.${Buffer.from(token).toString('base64url')}`;
}

/** 101 when the upgrade succeeds (the socket is closed at once), else the HTTP status. */
export function upgradeStatus(
  url: string,
  options: { protocols?: string[]; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {} });
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101, headers: {} });
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      res.resume();
      ws.terminate();
    });
    // `on`, not `once`: terminating a refused upgrade may report a second error.
    ws.on('error', (err) => reject(err));
  });
}
