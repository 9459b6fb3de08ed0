/**
 * The raw WebSocket baseline: a `ws` server in its own process that echoes every text frame, so
 * it is measured exactly like the gateway (a separate process, the same generators).
 */
import { WebSocketServer } from 'ws';
import { emit, serveCommands } from '../lib/ipc.js';

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  clientTracking: false,
});
server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
await new Promise<void>((resolve) => server.once('listening', () => resolve()));

serveCommands({}, () => new Promise<void>((resolve) => server.close(() => resolve())));

const address = server.address();
emit('ready', {
  port: typeof address === 'object' && address !== null ? address.port : 0,
  pid: process.pid,
});
