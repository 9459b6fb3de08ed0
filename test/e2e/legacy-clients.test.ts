/**
 * The core end-to-end scenarios with the older `phoenix` clients (npm aliases phoenix-1.6 and
 * phoenix-1.7) over WebSocket (`ws`). Their LongPoll runs in legacy-longpoll.test.ts.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import WebSocket from 'ws';
import * as Phoenix16 from 'phoenix-1.6';
import * as Phoenix17 from 'phoenix-1.7';
import { defineCoreScenarios, type PhoenixLib } from '../support/client-scenarios.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

const CLIENTS: { version: string; lib: PhoenixLib }[] = [
  { version: '1.6', lib: Phoenix16 },
  { version: '1.7', lib: Phoenix17 },
];

describe.each(CLIENTS)('phoenix $version client over websocket', ({ version, lib }) => {
  defineCoreScenarios({
    label: `ws-${version}`,
    lib: () => lib,
    transport: () => WebSocket,
    app: () => app,
    longpoll: false,
  });
});
