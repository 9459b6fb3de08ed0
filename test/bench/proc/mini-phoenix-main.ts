/**
 * The floor for fan-out and joins: a bare `ws` server that speaks just enough of Phoenix V2 for
 * the load generators (join, leave, heartbeat, and `pub`, which it broadcasts to the topic as
 * `msg`, encoded once for all subscribers). No sessions, channels, serializers, ordering, join
 * refs, timers or limits: what any Node WebSocket server must spend to do the same job.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { emit, serveCommands } from '../lib/ipc.js';

type Frame = [string | null, string | null, string, string, unknown];

const topics = new Map<string, Set<WebSocket>>();
const OK = { status: 'ok', response: {} };

function reply(ws: WebSocket, frame: Frame): void {
  ws.send(JSON.stringify([frame[0], frame[1], frame[2], 'phx_reply', OK]));
}

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  clientTracking: false,
});
server.on('connection', (ws) => {
  const joined = new Set<string>();
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString('utf8')) as Frame;
    const [, , topic, event, payload] = frame;
    if (event === 'phx_join') {
      let set = topics.get(topic);
      if (!set) topics.set(topic, (set = new Set()));
      set.add(ws);
      joined.add(topic);
    } else if (event === 'phx_leave') {
      topics.get(topic)?.delete(ws);
      joined.delete(topic);
    } else if (event === 'pub') {
      const text = Buffer.from(JSON.stringify([null, null, topic, 'msg', payload]));
      for (const subscriber of topics.get(topic) ?? []) subscriber.send(text);
    }
    reply(ws, frame);
  });
  ws.on('close', () => {
    for (const topic of joined) topics.get(topic)?.delete(ws);
  });
  ws.on('error', () => undefined);
});
await new Promise<void>((resolve) => server.once('listening', () => resolve()));

serveCommands(
  {
    subscribers: () => [...topics.values()].reduce((sum, set) => sum + set.size, 0),
  },
  () => new Promise<void>((resolve) => server.close(() => resolve())),
);

const address = server.address();
emit('ready', {
  port: typeof address === 'object' && address !== null ? address.port : 0,
  pid: process.pid,
});
