/**
 * The core end-to-end scenarios with the older `phoenix` clients (phoenix-1.6, phoenix-1.7) over
 * their LongPoll transport. Those releases only speak XMLHttpRequest, which Node lacks, so this
 * file (and only this one) installs a minimal fetch-based XMLHttpRequest (test/support/fetch-xhr.ts)
 * as a global. (The `xmlhttprequest-ssl` polyfill was tried first and rejected: its abort()
 * makes the aborted request's error handler throw an uncaught TypeError.)
 *
 * Their bundles also compute `global = self || window || global`, which is undefined in Node (the
 * `var global` shadows Node's), so `self` is defined while they are imported and removed after.
 *
 * Differences on the wire this covers: 1.6 POSTs every message on its own with
 * `Content-Type: application/json` (spec §6.3.3 "any other content type is one frame"); 1.7
 * batches ndjson; both send the session token as `?token=`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchXMLHttpRequest } from '../support/fetch-xhr.js';
import { defineCoreScenarios, type PhoenixLib } from '../support/client-scenarios.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const globals = globalThis as { self?: unknown; XMLHttpRequest?: unknown };
globals.XMLHttpRequest = FetchXMLHttpRequest;
globals.self = globalThis;
const Phoenix16 = await import('phoenix-1.6');
const Phoenix17 = await import('phoenix-1.7');
delete globals.self;

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

const CLIENTS: {
  version: string;
  lib: PhoenixLib & { LongPoll: typeof Phoenix16.LongPoll };
  postType: string;
}[] = [
  { version: '1.6', lib: Phoenix16, postType: 'application/json' },
  { version: '1.7', lib: Phoenix17, postType: 'application/x-ndjson' },
];

describe.each(CLIENTS)(
  'phoenix $version client over longpoll (XHR over fetch)',
  ({ version, lib, postType }) => {
    beforeAll(() => {
      FetchXMLHttpRequest.log.length = 0;
    });

    defineCoreScenarios({
      label: `lp-${version}`,
      lib: () => lib,
      transport: () => lib.LongPoll,
      app: () => app,
      longpoll: true,
    });

    it(`sent every message over LongPoll: POSTs as ${postType}, the session token as ?token=`, () => {
      const posts = FetchXMLHttpRequest.log.filter((request) => request.method === 'POST');
      expect(posts.length).toBeGreaterThan(10);
      for (const request of posts) {
        expect(request.headers['Content-Type']).toBe(postType);
        expect(new URL(request.url).pathname).toBe('/socket/longpoll');
        expect(new URL(request.url).searchParams.get('token')).toMatch(/.+/);
      }
    });
  },
);
