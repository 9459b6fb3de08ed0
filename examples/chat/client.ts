/**
 * A Node client for examples/chat/server.ts using the unmodified `phoenix` package.
 *
 *   npx tsx examples/chat/client.ts alice "hello there"   # user (alice|bob|carol), then messages
 *
 * Set TRANSPORT=longpoll to use LongPoll instead of WebSocket, URL to point elsewhere.
 */
import { LongPoll, Presence, Socket } from 'phoenix';
import WebSocket from 'ws';

const [user = 'alice', ...messages] = process.argv.slice(2);
const url = process.env.URL ?? `ws://127.0.0.1:${process.env.PORT ?? 4000}/socket`;

const socket = new Socket(url, {
  transport: process.env.TRANSPORT === 'longpoll' ? LongPoll : WebSocket,
  authToken: `${user}-secret`,
});
socket.connect();

const channel = socket.channel('room:lobby', {});
const presence = new Presence(channel);
presence.onSync(() => {
  const online = presence.list((id: string) => id).sort();
  console.log(`online: ${online.join(', ')}`);
});
channel.on('new_msg', (payload) => {
  const msg = payload as { from: string; body: string };
  console.log(`${msg.from}: ${msg.body}`);
});

/** Leaves the room and closes the socket, then exits 0 (after EXIT_AFTER_MS, or on SIGTERM). */
function leaveAndExit(): void {
  channel.leave();
  socket.disconnect(() => process.exit(0));
}
process.once('SIGTERM', leaveAndExit);

channel
  .join()
  .receive('ok', (reply) => {
    console.log(`joined room:lobby as ${(reply as { you: string }).you}`);
    for (const body of messages) channel.push('new_msg', { body });
    if (process.env.EXIT_AFTER_MS) {
      setTimeout(leaveAndExit, Number(process.env.EXIT_AFTER_MS));
    }
  })
  .receive('error', (err: unknown) => {
    console.error('join failed', err);
    process.exit(1);
  });
