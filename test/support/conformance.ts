import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { RawClient } from './ws-client.js';
import { startTestApp, type TestApp, type TestAppOptions } from './test-app.js';

export interface ConformanceContext {
  /** The conformance app, started once for the file. */
  readonly app: TestApp;
  /** A fresh raw client for each test. */
  readonly client: RawClient;
}

/**
 * The setup every conformance file shares: the app for the whole file and a new raw WebSocket
 * client per test (on `path`/`query`, already joined to `join = [topic, joinRef]` when given).
 */
export function conformance(
  options: {
    path?: string;
    query?: string;
    join?: readonly [string, string];
    app?: TestAppOptions;
  } = {},
): ConformanceContext {
  const ctx = {} as { app: TestApp; client: RawClient };
  beforeAll(async () => {
    ctx.app = await startTestApp(options.app);
  });
  afterAll(() => ctx.app.close());
  beforeEach(async () => {
    ctx.client = await RawClient.connect(ctx.app.wsUrl(options.path, options.query));
    if (options.join) await ctx.client.join(options.join[0], options.join[1]);
  });
  afterEach(() => ctx.client.close());
  return ctx;
}
