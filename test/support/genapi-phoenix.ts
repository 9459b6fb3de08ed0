/**
 * The real `phoenix` 1.8 JS client (WebSocket transport over `ws`) against a gen_api gateway:
 * connect a socket, join a channel whose callbacks land in one log in the order the client runs
 * them, and push requests while recording their ok/error/timeout callbacks in the same log.
 */
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import { replyOf, waitFor, type PushReply } from './phoenix-client.js';
import { deferred, WAIT_MS, within } from './wait.js';

export type Entry = [kind: string, payload: unknown];

/** A connected phoenix Socket (WebSocket transport) to `ws://127.0.0.1:<port><path>`. */
export async function phoenixSocket(
  port: number,
  params: Record<string, unknown>,
  path = '/socket',
): Promise<Socket> {
  const socket = new Socket(`ws://127.0.0.1:${port}${path}`, {
    transport: WebSocket as unknown as TransportConstructor,
    params,
  });
  socket.connect();
  await waitFor(() => socket.isConnected(), 'socket open');
  return socket;
}

/** A joined channel on `topic`; every `event` push from the server lands in `log` as ['on', payload]. */
export async function joinedChannel(
  socket: Socket,
  topic: string,
  event = 'phoenix_gen_api',
  params: object = {},
): Promise<{ channel: Channel; log: Entry[]; join: PushReply }> {
  const channel = socket.channel(topic, params);
  const log: Entry[] = [];
  channel.on(event, (payload) => log.push(['on', payload]));
  const join = await replyOf(channel.join());
  return { channel, log, join };
}

/**
 * Resolves once the server answered a heartbeat sent now on `socket`: the server writes a socket's
 * frames in order, so every frame it sent before that reply has been handled by the client.
 */
export function heartbeatRoundTrip(socket: Socket): Promise<void> {
  const answered = deferred();
  if (!socket.ping(() => answered.resolve())) answered.reject(new Error('socket not connected'));
  return within(answered.promise, 'the reply to a heartbeat');
}

/** The socket of a channel (phoenix.js keeps it in the channel's public `socket` field). */
function socketOf(channel: Channel): Socket {
  return (channel as unknown as { socket: Socket }).socket;
}

/**
 * Pushes `payload` on `event`, records its `push ok|error|timeout` callbacks into `log` next to
 * the channel events, waits for `count` entries, then for a heartbeat round trip (anything more
 * the server sent for it would be in the log by then), and returns them.
 */
export async function exchange(
  channel: Channel,
  log: Entry[],
  event: string,
  payload: object,
  count: number,
  timeoutMs = WAIT_MS,
): Promise<Entry[]> {
  log.length = 0;
  const push = channel.push(event, payload);
  for (const status of ['ok', 'error', 'timeout'])
    push.receive(status, (response) => log.push([`push ${status}`, response]));
  await waitFor(
    () => log.length >= count,
    `${count} callbacks for ${JSON.stringify(payload)}`,
    timeoutMs,
  );
  await heartbeatRoundTrip(socketOf(channel));
  return [...log];
}

/** The 7-key Response with defaults (a successful sync result of null). */
export function resp(id: unknown, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    request_id: id,
    result: null,
    success: true,
    error: null,
    async: false,
    has_more: false,
    can_retry: false,
    ...fields,
  };
}
