/**
 * The minimal WebSocket → NATS relay baseline: a `ws` server in its own process that publishes
 * every text frame as a NATS request to the workers' raw echo responder (`bench.raw.echo`) and
 * writes the reply back as it came. It is as lean as nats.js allows: one wildcard inbox
 * subscription, replies matched by a counter, no timer per request, no JSON, no Phoenix protocol,
 * no gen_api. What any gateway that puts NATS between a WebSocket and a worker pays per request on
 * this box: the echo server's socket read and write plus one NATS write and read.
 */
import { connect } from '@nats-io/transport-node';
import { WebSocketServer, type WebSocket } from 'ws';
import { emit, serveCommands } from '../lib/ipc.js';

const natsUrl = process.env.BENCH_NATS_URL;
if (!natsUrl) throw new Error('relay-main needs BENCH_NATS_URL');
const subject = process.env.BENCH_RELAY_SUBJECT ?? 'bench.raw.echo';

const nc = await connect({ servers: natsUrl, name: 'bench-relay' });
const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  clientTracking: false,
});
const inbox = `_INBOX.relay.${process.pid}`;
const waiting = new Map<string, WebSocket>();
let counter = 0;
nc.subscribe(`${inbox}.*`, {
  callback: (err, msg) => {
    if (err) return;
    const token = msg.subject.slice(inbox.length + 1);
    const ws = waiting.get(token);
    if (!ws) return;
    waiting.delete(token);
    ws.send(msg.data, { binary: false });
  },
});
server.on('connection', (ws) => {
  ws.on('message', (data: Buffer) => {
    const token = (++counter).toString(36);
    waiting.set(token, ws);
    nc.publish(subject, data, { reply: `${inbox}.${token}` });
  });
});
await new Promise<void>((resolve) => server.once('listening', () => resolve()));

serveCommands({}, async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await nc.close();
});

const address = server.address();
emit('ready', {
  port: typeof address === 'object' && address !== null ? address.port : 0,
  pid: process.pid,
});
