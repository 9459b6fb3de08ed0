/**
 * Protocol spec §8 G cases 68–69 with the real client: the JS client's binary encoding reaches
 * handlers as bytes, and binary pushes, broadcasts and replies decode to ArrayBuffers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Socket } from 'phoenix';
import WebSocket from 'ws';
import { nextEvent, replyOf, waitFor } from '../support/phoenix-client.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

let app: TestApp;
let socket: Socket;
beforeAll(async () => {
  app = await startTestApp();
  socket = new Socket(`ws://127.0.0.1:${app.port}/socket`, { transport: WebSocket });
  socket.connect();
  await waitFor(() => socket.isConnected(), 'connected');
});
afterAll(async () => {
  socket.disconnect();
  await app.close();
});

const bytesOf = (value: unknown) => Array.from(new Uint8Array(value as ArrayBuffer));

describe('binary frames with the phoenix client', () => {
  it('68–69: an ArrayBuffer push round-trips as binary push, broadcast and reply', async () => {
    const channel = socket.channel('room:reply', {});
    expect((await replyOf(channel.join())).status).toBe('ok');
    const push = nextEvent(channel, 'bin_push');
    const broadcast = nextEvent(channel, 'bin_bcast');
    const reply = replyOf(channel.push('bin', Uint8Array.of(1, 2, 3).buffer));
    const [pushed, broadcasted, replied] = await Promise.all([push, broadcast, reply]);
    expect(pushed).toBeInstanceOf(ArrayBuffer);
    expect(bytesOf(pushed)).toEqual([0, 1]);
    expect(broadcasted).toBeInstanceOf(ArrayBuffer);
    expect(bytesOf(broadcasted)).toEqual([2, 3]);
    expect(replied.status).toBe('ok');
    expect(bytesOf(replied.response)).toEqual([1, 2, 3, 255]);
  });

  it('69: a Uint8Array payload is sent as JSON by the client, and stays JSON', async () => {
    const channel = socket.channel('room:json', {});
    await replyOf(channel.join());
    const reply = await replyOf(channel.push('bin', Uint8Array.of(1, 2)));
    expect(reply).toEqual({ status: 'ok', response: { 0: 1, 1: 2 } });
  });
});
