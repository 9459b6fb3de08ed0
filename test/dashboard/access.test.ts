/**
 * Who gets a dashboard: the demo without an admin token serves it to loopback peers only (the TCP
 * peer, not a forwarding header; a local page Origin); without admin config and outside the demo
 * there is none (404); `enabled` switches it off or insists on it. The page's headers (strict CSP)
 * and assets (the installed phoenix.mjs), the viewer cap, the options' limits, and the hub that
 * subscribes to telemetry only while someone watches.
 */
import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { createGateway, createGenApi } from '../../src/index.js';
import { ConfigError, validateConfig } from '../../src/config/file.js';
import { OptionError } from '../../src/config/errors.js';
import { mountDashboard } from '../../src/dashboard/dashboard.js';
import { resolveDashboardOptions } from '../../src/dashboard/options.js';
import { DASHBOARD_CSP } from '../../src/dashboard/route.js';
import type { RequestSample } from '../../src/dashboard/request-window.js';
import { until } from '../support/wait.js';
import { connectViewer, upgradeStatus, type Viewer } from './viewer.js';

const silent = () => pino({ level: 'silent' });
const TOKEN = 'dashboard-token-0123456789abcdef';

/** This machine's first non-loopback IPv4 address, if it has one. */
const EXTERNAL_IP = Object.values(networkInterfaces())
  .flat()
  .find(
    (address) => address !== undefined && address.family === 'IPv4' && !address.internal,
  )?.address;

describe('the demo without an admin token: loopback only', () => {
  let running: RunningGateway;
  let port = 0;
  const viewers: Viewer[] = [];

  beforeAll(async () => {
    running = await startGateway({
      config: { dashboard: { maxViewers: 2 } },
      fromFile: false,
      demo: true,
      // Every interface, so a non-loopback address of this machine reaches it too.
      host: '0.0.0.0',
      port: 0,
      logger: silent(),
    });
    port = running.address.port;
  });

  afterAll(async () => {
    for (const v of viewers) v.close();
    await running?.gateway.close();
  });

  it('serves the page with a strict CSP and the installed phoenix.mjs', async () => {
    const page = await fetch(`http://127.0.0.1:${port}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).toContain('data-auth="loopback"');
    expect(html).toContain('data-socket="/admin/socket"');
    expect(html).not.toMatch(/<script>|<style>| style=|https?:\/\//);

    const phoenix = await fetch(`http://127.0.0.1:${port}/dashboard/phoenix.mjs`);
    expect(phoenix.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const installed = fileURLToPath(
      new URL('../../node_modules/phoenix/priv/static/phoenix.mjs', import.meta.url),
    );
    expect(await phoenix.text()).toBe(await readFile(installed, 'utf8'));
    for (const asset of ['app.js', 'app.css', 'icon.svg']) {
      const res = await fetch(`http://127.0.0.1:${port}/dashboard/${asset}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    }
    const head = await fetch(`http://127.0.0.1:${port}/dashboard`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/dashboard`, { method: 'POST' })).status).toBe(
      405,
    );
    expect((await fetch(`http://127.0.0.1:${port}/dashboard/nothing`)).status).toBe(404);
  });

  it('a loopback client watches without a token', async () => {
    const v = await connectViewer(port);
    viewers.push(v);
    expect(v.join.status).toBe('ok');
    expect(v.snapshots[0]!.genApi.services).toEqual(expect.arrayContaining(['demo']));
    expect(v.snapshots[0]!.nats).toBeNull();
    expect(v.snapshots[0]!.cluster).toBeNull();
    v.close();
    await until(() => running.gateway.stats.sockets === 0, 'the viewer gone');
  });

  it('a page on another origin is refused (a DNS-rebound name cannot read it)', async () => {
    const url = `ws://127.0.0.1:${port}/admin/socket/websocket?vsn=2.0.0`;
    expect((await upgradeStatus(url, { headers: { origin: 'http://evil.example' } })).status).toBe(
      403,
    );
    expect(
      (await upgradeStatus(url, { headers: { origin: `http://localhost:${port}` } })).status,
    ).toBe(101);
  });

  it.skipIf(EXTERNAL_IP === undefined)(
    'a non-loopback peer gets 403, page and socket, whatever X-Forwarded-For says',
    async () => {
      const forged = { 'x-forwarded-for': '127.0.0.1' };
      const url = `ws://${EXTERNAL_IP}:${port}/admin/socket/websocket?vsn=2.0.0`;
      expect((await upgradeStatus(url)).status).toBe(403);
      expect((await upgradeStatus(url, { headers: forged })).status).toBe(403);
      const page = await fetch(`http://${EXTERNAL_IP}:${port}/dashboard`, { headers: forged });
      expect(page.status).toBe(403);
      // The app's own socket is not affected.
      expect(
        (await upgradeStatus(`ws://${EXTERNAL_IP}:${port}/socket/websocket?vsn=2.0.0`)).status,
      ).toBe(101);
    },
  );

  it('dashboard.maxViewers caps the connections (503 past it)', async () => {
    viewers.push(await connectViewer(port), await connectViewer(port));
    const url = `ws://127.0.0.1:${port}/admin/socket/websocket?vsn=2.0.0`;
    expect((await upgradeStatus(url)).status).toBe(503);
  });
});

describe('no dashboard', () => {
  const started: RunningGateway[] = [];
  afterAll(async () => {
    for (const running of started) await running.gateway.close();
  });

  async function start(config: Parameters<typeof startGateway>[0]['config']): Promise<number> {
    const running = await startGateway({ config, fromFile: true, port: 0, logger: silent() });
    started.push(running);
    return running.address.port;
  }

  async function served(port: number): Promise<{ page: number; socket: number }> {
    return {
      page: (await fetch(`http://127.0.0.1:${port}/dashboard`)).status,
      socket: (await upgradeStatus(`ws://127.0.0.1:${port}/admin/socket/websocket?vsn=2.0.0`))
        .status,
    };
  }

  it('without admin config and outside the demo: 404', async () => {
    expect(await served(await start({}))).toEqual({ page: 404, socket: 404 });
  });

  it('enabled: false turns it off even with an admin token', async () => {
    const port = await start({ admin: { token: TOKEN }, dashboard: { enabled: false } });
    expect(await served(port)).toEqual({ page: 404, socket: 404 });
  });

  it('with an admin token, under the configured paths; the page asks for the token', async () => {
    const port = await start({
      admin: { token: TOKEN },
      dashboard: { path: '/ops/dash', socketPath: '/ops/socket' },
    });
    const page = await fetch(`http://127.0.0.1:${port}/ops/dash`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-auth="token"');
    const v = await connectViewer(port, { token: TOKEN, path: '/ops/socket' });
    expect(v.join.status).toBe('ok');
    v.close();
  });

  it('enabled: true without an admin token outside the demo is a config error', async () => {
    await expect(start({ dashboard: { enabled: true } })).rejects.toThrow(ConfigError);
  });
});

describe('options', () => {
  it('every option has a default and a checked range', () => {
    expect(resolveDashboardOptions()).toEqual({
      path: '/dashboard',
      socketPath: '/admin/socket',
      intervalMs: 1_000,
      windowMs: 10_000,
      maxFunctions: 100,
      topTopics: 10,
      topKeys: 5,
      maxViewers: 16,
    });
    expect(() => resolveDashboardOptions({ intervalMs: 50 })).toThrow(
      new OptionError('dashboard.intervalMs must be an integer from 100 to 60000, got 50'),
    );
    expect(() => resolveDashboardOptions({ windowMs: 1_500 })).toThrow(/whole seconds/);
    expect(() => resolveDashboardOptions({ maxFunctions: 0 })).toThrow(/dashboard.maxFunctions/);
    expect(() => resolveDashboardOptions({ maxViewers: 0 })).toThrow(/dashboard.maxViewers/);
    expect(() => resolveDashboardOptions({ path: 'dashboard' })).toThrow(/dashboard.path/);
    expect(() => resolveDashboardOptions({ path: '/x', socketPath: '/x' })).toThrow(/differ/);
  });

  it('the config file refuses unknown dashboard settings', () => {
    expect(() => validateConfig('c.json', { dashboard: { interval: 5 } })).toThrow(
      new ConfigError('c.json: unknown setting "dashboard.interval"'),
    );
    expect(validateConfig('c.json', { dashboard: { intervalMs: 500 } }).dashboard).toEqual({
      intervalMs: 500,
    });
  });
});

describe('the hub', () => {
  it('listens to genapi_request only while someone watches, once for every viewer', async () => {
    const gateway = createGateway({ logger: false });
    const genApi = createGenApi(gateway);
    let listening = 0;
    const hub = mountDashboard(gateway, {
      genApi,
      access: { kind: 'loopback' },
      options: { intervalMs: 100 },
      requests: (_handler: (sample: RequestSample) => void) => {
        listening++;
        return () => listening--;
      },
      throttle: null,
    });
    const { port } = await gateway.listen(0, '127.0.0.1');
    try {
      expect(listening).toBe(0);
      const a = await connectViewer(port);
      const b = await connectViewer(port);
      expect(hub.size).toBe(2);
      expect(listening).toBe(1);
      a.close();
      await until(() => hub.size === 1, 'one viewer left');
      expect(listening).toBe(1);
      b.close();
      await until(() => hub.size === 0, 'no viewer left');
      expect(listening).toBe(0);
    } finally {
      await gateway.close();
    }
  });
});
