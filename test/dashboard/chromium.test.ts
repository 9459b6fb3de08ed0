/**
 * The dashboard page in headless Chromium, driven over the DevTools protocol: it loads under its
 * strict CSP without an error, runs the real phoenix client against the gateway's admin channel,
 * shows live numbers that follow activity within about two snapshot intervals, and renders (a
 * screenshot of the expected size that is not blank, and differs once the numbers moved). In token
 * mode the page asks for the token, says when it is refused, and connects with the right one.
 * With NATS, an SDK worker and a second gateway, the page draws the NATS status, the discovered
 * workers, the breakers and every cluster node, and drops a node that leaves.
 * Screenshots go to a temporary directory (kept when DASHBOARD_SCREENSHOTS names one).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { CHROMIUM, launchChromium, type Browser, type Page } from '../support/chromium.js';
import { startWorker, type Worker } from '../support/genapi-app.js';
import { ApiClient } from '../support/genapi-client.js';
import { slowService } from '../support/genapi-services.js';
import { NatsServer } from '../support/nats.js';
import { decodePng, differingPixels, pixelStats } from '../support/png.js';
import { until } from '../support/wait.js';

const WIDTH = 1280;
const HEIGHT = 900;
const TOKEN = 'dashboard-token-0123456789abcdef';

let shots = '';
beforeAll(async () => {
  const keep = process.env.DASHBOARD_SCREENSHOTS;
  shots = keep ? keep : await mkdtemp(join(tmpdir(), 'gen-gateway-dashboard-'));
  await mkdir(shots, { recursive: true });
});
afterAll(async () => {
  if (!process.env.DASHBOARD_SCREENSHOTS && shots)
    await rm(shots, { recursive: true, force: true });
});

/** The text of element `id`, or null when it is hidden or missing. */
const text = (page: Page, id: string): Promise<string | null> =>
  page.evaluate<string | null>(
    `(() => { const e = document.getElementById(${JSON.stringify(id)}); ` +
      `return e && !e.closest('[hidden]') ? e.textContent : null; })()`,
  );

const number = async (page: Page, id: string): Promise<number> =>
  Number((await text(page, id))?.replace(/,/g, '') ?? Number.NaN);

describe.skipIf(!CHROMIUM)('the dashboard page in headless Chromium', () => {
  describe('demo (loopback, default interval)', () => {
    let running: RunningGateway;
    let browser: Browser;
    let page: Page;
    let port = 0;

    beforeAll(async () => {
      running = await startGateway({
        config: {},
        fromFile: false,
        demo: true,
        port: 0,
        logger: pino({ level: 'silent' }),
      });
      port = running.address.port;
      browser = await launchChromium(`http://127.0.0.1:${port}/dashboard`, {
        devtools: true,
        windowSize: [WIDTH, HEIGHT],
      });
      page = browser.page!;
    }, 40_000);

    afterAll(async () => {
      await browser?.close();
      await running?.gateway.close();
    });

    it('renders live numbers that follow activity, and a screenshot that shows them', async () => {
      await until(async () => (await text(page, 'status')) === 'live', 'the page to go live');
      const before = await number(page, 'stat-sockets');
      expect(before).toBeGreaterThanOrEqual(1); // the page's own socket
      const first = await page.screenshot();
      await writeFile(join(shots, 'dashboard-before.png'), first);

      const url = `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=browser-test`;
      const clients = await Promise.all([1, 2, 3].map(() => ApiClient.connect(url)));
      try {
        for (let i = 0; i < 5; i++)
          await clients[i % 3]!.sync({
            request_id: `b${i}`,
            service: 'demo',
            request_type: 'echo',
            args: { message: 'hi' },
          });
        await until(() => running.gateway.stats.sockets >= before + 3, 'the gateway to count them');
        const activity = performance.now();
        await until(
          async () =>
            (await number(page, 'stat-sockets')) >= before + 3 &&
            (await text(page, 'functions'))?.includes('echo') === true,
          'the page to show the sockets and the calls',
        );
        const seenAfterMs = performance.now() - activity;
        // The contract is a snapshot at least every second (typically seen here within ~1 s);
        // three intervals leave room for a loaded machine without hiding a page that stalls.
        expect(seenAfterMs).toBeLessThan(3_000);
        expect(await number(page, 'stat-channels')).toBeGreaterThanOrEqual(3);
        expect(await text(page, 'topics')).toContain('gen_api:lobby');
        expect(await text(page, 'policies')).toContain('demo.limited');
        expect(await text(page, 'stat-nats')).toBe('off');

        const second = await page.screenshot();
        await writeFile(join(shots, 'dashboard-after.png'), second);
        const [a, b] = [decodePng(first), decodePng(second)];
        const viewport = await page.evaluate<[number, number]>(
          '[innerWidth * devicePixelRatio, innerHeight * devicePixelRatio]',
        );
        expect([b.width, b.height]).toEqual(viewport);
        expect([b.width, b.height]).toEqual([WIDTH, HEIGHT]);
        // Not blank: text, cards and tables in several colours over a fair part of the page.
        const stats = pixelStats(b);
        expect(stats.colours).toBeGreaterThan(20);
        expect(stats.foreground).toBeGreaterThan(0.05);
        // The numbers moved, and so did the pixels.
        expect(differingPixels(a, b)).toBeGreaterThan(100);
      } finally {
        for (const client of clients) client.close();
      }
      // No CSP violation, no script error.
      expect(page.errors).toEqual([]);
    });
  });

  describe('with NATS, a worker and a second gateway', () => {
    let nats: NatsServer;
    let worker: Worker;
    let running: RunningGateway;
    let peer: RunningGateway | null = null;
    let browser: Browser;
    let page: Page;
    let port = 0;
    const natsConfig = (url: string) => ({
      servers: url,
      trustedNetwork: true,
      discovery: { intervalMs: 200, ttlMs: 1_000, pingWaitMs: 100 },
    });

    beforeAll(async () => {
      nats = await NatsServer.start();
      worker = await startWorker(slowService('W', { calls: 0, inflight: 0 }), nats.url);
      running = await startGateway({
        config: {
          admin: { token: TOKEN },
          nats: natsConfig(nats.url),
          socket: { connect: ({ params }) => ({ assigns: { user_id: params.user_id ?? null } }) },
        },
        fromFile: true,
        port: 0,
        logger: pino({ level: 'silent' }),
      });
      port = running.address.port;
      peer = await startGateway({
        config: { nodeId: 'dashboard-ui-peer', nats: natsConfig(nats.url) },
        fromFile: true,
        port: 0,
        logger: pino({ level: 'silent' }),
      });
      await until(
        () =>
          running.genApi.registry.resolve('slowsvc', 'echo', null).ok &&
          running.genApi.nats!.discovery.instances('slowsvc').length === 1,
        'the worker discovered',
      );
      browser = await launchChromium(`http://127.0.0.1:${port}/dashboard`, {
        devtools: true,
        windowSize: [WIDTH, HEIGHT],
      });
      page = browser.page!;
      await until(async () => (await text(page, 'token')) !== null, 'the login form');
      await page.evaluate(
        `(() => { document.getElementById('token').value = ${JSON.stringify(TOKEN)}; ` +
          `document.getElementById('login').requestSubmit(); })()`,
      );
      await until(async () => (await text(page, 'status')) === 'live', 'the page to go live');
    }, 40_000);

    afterAll(async () => {
      await browser?.close();
      await peer?.gateway.close();
      await running?.gateway.close();
      await worker?.stop();
      await nats?.stop();
    });

    it('draws NATS, the workers, the breakers and the cluster nodes', async () => {
      const client = await ApiClient.connect(
        `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=browser-nats`,
      );
      try {
        const { push } = await client.sync({
          request_id: 'n1',
          service: 'slowsvc',
          request_type: 'echo',
          args: { message: 'hi' },
        });
        expect(push).toMatchObject({ success: true, result: { message: 'hi' } });
      } finally {
        client.close();
      }
      await until(
        async () =>
          (await text(page, 'stat-nats')) === 'connected' &&
          (await text(page, 'workers'))?.includes('slowsvc') === true &&
          (await text(page, 'breakers'))?.includes('slowsvc') === true &&
          (await text(page, 'nodes'))?.includes('dashboard-ui-peer') === true,
        'NATS, the worker, its breaker and the peer on the page',
      );
      expect(await number(page, 'stat-workers')).toBe(1);
      expect(await text(page, 'stat-rtt')).toMatch(/^rtt [\d.]+ ms$/);
      const workers = (await text(page, 'workers'))!;
      expect(workers).toContain('1.0.0');
      expect(await text(page, 'breakers')).toContain('closed');
      const nodes = (await text(page, 'nodes'))!;
      expect(nodes).toContain(`${running.gateway.nodeId} (this node)`);
      expect(await text(page, 'cluster-status')).toMatch(/^connected via /);
      const shot = decodePng(await page.screenshot());
      await writeFile(join(shots, 'dashboard-nats.png'), await page.screenshot());
      expect([shot.width, shot.height]).toEqual([WIDTH, HEIGHT]);
      expect(pixelStats(shot).foreground).toBeGreaterThan(0.05);

      // The peer leaves: its row goes.
      await peer!.gateway.close();
      peer = null;
      await until(
        async () => (await text(page, 'nodes'))?.includes('dashboard-ui-peer') === false,
        'the peer gone from the page',
      );
      expect(page.errors).toEqual([]);
    });
  });

  describe('with an admin token', () => {
    let running: RunningGateway;
    let browser: Browser;
    let page: Page;

    beforeAll(async () => {
      running = await startGateway({
        config: { admin: { token: TOKEN } },
        fromFile: true,
        port: 0,
        logger: pino({ level: 'silent' }),
      });
      browser = await launchChromium(`http://127.0.0.1:${running.address.port}/dashboard`, {
        devtools: true,
        windowSize: [WIDTH, HEIGHT],
      });
      page = browser.page!;
    }, 40_000);

    afterAll(async () => {
      await browser?.close();
      await running?.gateway.close();
    });

    const submit = (token: string) =>
      page.evaluate(
        `(() => { document.getElementById('token').value = ${JSON.stringify(token)}; ` +
          `document.getElementById('login').requestSubmit(); })()`,
      );

    it('asks for the token, says when it is refused, and connects with the right one', async () => {
      await until(async () => (await text(page, 'token')) !== null, 'the login form');
      expect(await text(page, 'board')).toBeNull();

      await submit('wrong-token-0123456789abcdef');
      await until(
        async () => (await text(page, 'login-error'))?.startsWith('Refused') === true,
        'the refusal on the page',
      );
      expect(await text(page, 'board')).toBeNull();

      await submit(TOKEN);
      await until(async () => (await text(page, 'status')) === 'live', 'the page to go live');
      expect(await text(page, 'login')).toBeNull();
      expect(await number(page, 'stat-sockets')).toBeGreaterThanOrEqual(1);
      const shot = decodePng(await page.screenshot());
      await writeFile(join(shots, 'dashboard-token.png'), await page.screenshot());
      expect([shot.width, shot.height]).toEqual([WIDTH, HEIGHT]);
      expect(pixelStats(shot).foreground).toBeGreaterThan(0.05);
      // The only error: the refused handshake of the wrong token.
      expect(page.errors.filter((error) => !/WebSocket connection .* failed/.test(error))).toEqual(
        [],
      );
    });
  });
});
