/**
 * The unmodified phoenix client in a real browser (headless Chromium), from a page served on
 * another origin: the browser's own WebSocket, LongPoll over XMLHttpRequest with real CORS
 * preflights, the Origin check, the LongPoll fallback remembered in sessionStorage, binary
 * frames and Presence. CI installs Debian's chromium; without it this file is skipped.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../src/index.js';
import {
  connectHook,
  presenceChannel,
  roomChannel,
  type TestAssigns,
} from '../support/test-app.js';
import { CHROMIUM, launchChromium, type Browser } from '../support/chromium.js';
const here = fileURLToPath(new URL('.', import.meta.url));
const phoenixBundle = fileURLToPath(
  new URL('../../node_modules/phoenix/priv/static/phoenix.mjs', import.meta.url),
);

type Results = Record<string, Record<string, unknown>>;

let gateway: Gateway;
let pageServer: Server;
let browser: Browser;
let results: Results;

async function startPageServer(onReport: (body: string) => void): Promise<number> {
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === '/report') {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        res.end('ok');
        onReport(body);
      });
      return;
    }
    const files: Record<string, [string, string]> = {
      '/': ['<!doctype html><script type="module" src="/page.js"></script>', 'text/html'],
    };
    if (path === '/page.js')
      files[path] = [await readFile(join(here, 'page.js'), 'utf8'), 'text/javascript'];
    if (path === '/phoenix.mjs')
      files[path] = [await readFile(phoenixBundle, 'utf8'), 'text/javascript'];
    const file = files[path ?? ''];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file[1] }).end(file[0]);
  };
  pageServer = createServer((req, res) => {
    serve(req, res).catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  return (pageServer.address() as { port: number }).port;
}

describe.skipIf(!CHROMIUM)('phoenix client in headless Chromium', () => {
  beforeAll(async () => {
    gateway = createGateway({ logger: false });
    const presence = presenceChannel(gateway);
    // checkOrigin true: the page's Origin (127.0.0.1, another port) has the Host header's host.
    gateway
      .socket<TestAssigns>('/defaults', { connect: connectHook })
      .channel('room:*', roomChannel)
      .channel('presence:*', presence);
    gateway
      .socket<TestAssigns>('/strict', { connect: connectHook, checkOrigin: ['//allowed.example'] })
      .channel('room:*', roomChannel);
    gateway
      .socket<TestAssigns>('/nows', { connect: connectHook, websocket: false })
      .channel('room:*', roomChannel);
    const { port } = await gateway.listen(0, '127.0.0.1');

    let report!: (body: string) => void;
    const reported = new Promise<string>((resolve) => (report = resolve));
    const pagePort = await startPageServer(report);
    browser = await launchChromium(
      `http://127.0.0.1:${pagePort}/?gateway=${encodeURIComponent(`ws://127.0.0.1:${port}`)}`,
    );
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('the page reported nothing within 40 s')), 40_000),
    );
    results = JSON.parse(await Promise.race([reported, timeout])) as Results;
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await new Promise((resolve) => pageServer?.close(resolve));
  });

  it.each(['websocket', 'longpoll'])(
    '%s: join, authToken and params, echo, presence',
    (transport) => {
      const result = results[transport]!;
      expect(result.failed).toBeUndefined();
      expect(result.transport).toBe(transport);
      expect(result.joined).toEqual({ status: 'ok', response: {} });
      expect(result.welcome).toEqual({
        assigns_token: 'tok',
        params: { user_id: '7', vsn: '2.0.0' },
      });
      expect(result.echo).toEqual({ status: 'ok', response: { hello: 'browser' } });
      expect(result.presence).toEqual([`${transport}-user`]);
    },
  );

  it('websocket: an ArrayBuffer push gets a binary reply', () => {
    expect(results.websocket!.binary).toEqual([1, 2, 3, 255]);
  });

  it('a disallowed Origin is refused before the socket opens', () => {
    expect(results.originRefused).toEqual({ errored: true, opened: false });
  });

  it('falls back to LongPoll when WebSocket is refused, and remembers it', () => {
    const result = results.fallback!;
    expect(result.failed).toBeUndefined();
    expect(result.transport).toBe('longpoll');
    expect(result.joined).toEqual({ status: 'ok', response: {} });
    expect(result.echo).toEqual({ status: 'ok', response: { via: 'fallback' } });
    expect(result.remembered).toBe('true');
  });
});
