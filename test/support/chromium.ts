/**
 * Headless Chromium for browser tests (CI installs Debian's chromium; without it those files skip):
 * `launchChromium(url)` opens a page with a throw-away profile; with `devtools: true` it also
 * connects the DevTools protocol to that page (`Page`) so a test can evaluate expressions in it,
 * collect its console errors and CSP violations, and take screenshots.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { until } from './wait.js';

/** The Chromium binary, or undefined when this machine has none. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) =>
  existsSync(path),
);

/** The flags every browser test runs with: headless, no sandbox, nothing fetched on its own. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
}

/** One page over the DevTools protocol. */
export class Page {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (result: Record<string, unknown>) => void; reject: (err: Error) => void }
  >();
  /** Console errors, uncaught exceptions and log entries of level error (CSP violations among them). */
  readonly errors: string[] = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString('utf8')) as CdpMessage;
      if (message.id !== undefined) {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) waiter?.reject(new Error(message.error.message));
        else waiter?.resolve(message.result ?? {});
        return;
      }
      this.record(message);
      for (const waiter of [...this.waiters]) waiter(message);
    });
  }

  private readonly waiters = new Set<(message: CdpMessage) => void>();

  /** Loads `url` and resolves once its load event fired. */
  async navigate(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => {
      const waiter = (message: CdpMessage) => {
        if (message.method !== 'Page.loadEventFired') return;
        this.waiters.delete(waiter);
        resolve();
      };
      this.waiters.add(waiter);
    });
    const result = await this.send('Page.navigate', { url });
    if (typeof result.errorText === 'string')
      throw new Error(`navigation failed: ${result.errorText}`);
    await loaded;
  }

  static async connect(debuggerUrl: string): Promise<Page> {
    const ws = new WebSocket(debuggerUrl, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const page = new Page(ws);
    await page.send('Runtime.enable');
    await page.send('Log.enable');
    await page.send('Page.enable');
    return page;
  }

  private record(message: CdpMessage): void {
    const params = message.params ?? {};
    if (message.method === 'Runtime.exceptionThrown') {
      const details = params.exceptionDetails as {
        text?: string;
        exception?: { description?: string };
      };
      this.errors.push(`exception: ${details.exception?.description ?? details.text ?? '?'}`);
    } else if (message.method === 'Log.entryAdded') {
      const entry = params.entry as { level: string; text: string; url?: string };
      // A refused WebSocket handshake is logged too: the tests that expect one filter it out.
      if (entry.level === 'error') this.errors.push(`log: ${entry.text}`);
    } else if (message.method === 'Runtime.consoleAPICalled' && params.type === 'error') {
      this.errors.push(`console: ${JSON.stringify(params.args)}`);
    }
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The value of `expression` evaluated in the page (awaited when it is a promise). */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.send('Runtime.evaluate', {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    const details = result.exceptionDetails as { text?: string } | undefined;
    if (details) throw new Error(`evaluate failed: ${details.text ?? expression}`);
    return (result.result as { value: T }).value;
  }

  /** A PNG of the viewport. */
  async screenshot(): Promise<Buffer> {
    const { data } = (await this.send('Page.captureScreenshot', { format: 'png' })) as {
      data: string;
    };
    return Buffer.from(data, 'base64');
  }

  close(): void {
    this.ws.close();
  }
}

/** A running browser on one page (its DevTools connection with `devtools: true`). */
export interface Browser {
  readonly process: ChildProcess;
  /** The page, when launched with `devtools: true`. */
  readonly page: Page | null;
  close(): Promise<void>;
}

/**
 * Starts headless Chromium on `url` with a fresh profile. `devtools`: listen for the DevTools
 * protocol on a free port (Chromium writes it to DevToolsActivePort in the profile) and connect to
 * the page. `windowSize`: the window, and with `devtools` exactly the viewport, e.g. [1280, 900].
 */
export async function launchChromium(
  url: string,
  options: { devtools?: boolean; windowSize?: readonly [number, number] } = {},
): Promise<Browser> {
  if (!CHROMIUM) throw new Error('no chromium on this machine');
  const profile = await mkdtemp(join(tmpdir(), 'gen-gateway-chromium-'));
  const args = [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`];
  if (options.windowSize) args.push(`--window-size=${options.windowSize.join(',')}`);
  if (options.devtools) args.push('--remote-debugging-port=0', '--hide-scrollbars');
  // With DevTools the page is loaded once the protocol listens, so nothing it logs is missed.
  // Its own process group: the renderer, GPU and crashpad children write into the profile too,
  // and outlive a kill of the browser process alone.
  const browser = spawn(CHROMIUM, [...args, options.devtools ? 'about:blank' : url], {
    stdio: 'ignore',
    detached: true,
  });
  const close = async () => {
    page?.close();
    if (browser.exitCode === null && browser.signalCode === null) {
      const exited = new Promise((resolve) => browser.once('exit', resolve));
      const group = browser.pid;
      try {
        if (group === undefined) throw new Error('not started');
        process.kill(-group, 'SIGKILL');
      } catch {
        browser.kill('SIGKILL');
      }
      await exited;
    }
    // A child killed mid-write may leave a file behind for a moment (ENOTEMPTY): rm retries.
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  };
  let page: Page | null = null;
  if (!options.devtools) return { process: browser, page, close };
  try {
    const port = await until(
      async () => {
        const text = await readFile(join(profile, 'DevToolsActivePort'), 'utf8').catch(() => '');
        const first = Number(text.split('\n')[0]);
        return first > 0 ? first : null;
      },
      'Chromium to open its DevTools port',
      20_000,
    );
    const target = await until(
      async () => {
        const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
          type: string;
          url: string;
          webSocketDebuggerUrl: string;
        }[];
        return list.find((entry) => entry.type === 'page');
      },
      'the page target',
      20_000,
    );
    page = await Page.connect(target.webSocketDebuggerUrl);
    if (options.windowSize) {
      // The window's size includes browser chrome even headless: pin the viewport itself.
      const [width, height] = options.windowSize;
      await page.send('Emulation.setDeviceMetricsOverride', {
        width,
        height,
        deviceScaleFactor: 1,
        mobile: false,
      });
    }
    await page.navigate(url);
    return { process: browser, page, close };
  } catch (err) {
    await close();
    throw err;
  }
}
