/**
 * NATS credentials and TLS (issue 12): against real nats-server processes configured for
 * user/password, token, nkey, operator-mode `.creds` (JWTs minted here) and TLS (a CA and
 * certificates made by openssl), a gateway (`genApi.connectNats`, so also its cluster connection)
 * and a worker (`connectWorker` + `serve`) connect and a gen_api call round-trips through the
 * phoenix client. Wrong credentials fail start-up with a NatsConnectError naming NATS auth (or
 * TLS), and a gateway with its own `inboxPrefix` works on a server that lets it subscribe to no
 * other inbox, while a worker cannot read that inbox. Config and environment parsing are checked
 * here too.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, validateConfig, withNatsCredentialEnv } from '../../src/config/file.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { createGateway, GenApi } from '../../src/index.js';
import { NatsConnectError, type NatsCredentials } from '../../src/nats/connection.js';
import { defineService, fn } from '../../src/worker/define.js';
import { connectWorker, workerConnectOptionsFromEnv } from '../../src/worker/connect.js';
import { serve } from '../../src/worker/nats.js';
import { startGenApiApp } from '../support/genapi-app.js';
import { exchange, joinedChannel, phoenixSocket, resp } from '../support/genapi-phoenix.js';
import { NatsServer } from '../support/nats.js';
import {
  makeCertificates,
  NatsOperator,
  nkeyUser,
  type TestCertificates,
} from '../support/nats-jwt.js';
import { spawnTs } from '../support/spawn.js';
import { deferred, until, within } from '../support/wait.js';

const secure = defineService({
  name: 'secure',
  version: '1.0.0',
  functions: {
    echo: fn({
      args: { message: 'string' },
      handler: ({ message }, ctx) => ({ message, user: ctx.userId }),
    }),
  },
});

let dir: string;
let certs: TestCertificates;
const servers: NatsServer[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gen-gateway-natsauth-'));
  certs = makeCertificates(dir);
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.dispose()));
  rmSync(dir, { recursive: true, force: true });
});

async function natsServer(config: string): Promise<NatsServer> {
  const server = await NatsServer.start({ config });
  servers.push(server);
  return server;
}

/** A file in the test's directory. */
function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/**
 * A gateway and a worker, each with its credentials, on `server`; a gen_api `echo` pushed by the
 * phoenix client comes back through the worker.
 */
async function roundTrip(
  server: NatsServer,
  gateway: NatsCredentials,
  worker: NatsCredentials,
  requestId: string,
): Promise<void> {
  const app = await startGenApiApp({ nats: server.url, natsOptions: gateway });
  let nc: NatsConnection | null = null;
  try {
    nc = await connectWorker({ servers: server.url, service: 'secure', ...worker });
    const running = await serve(secure, { nats: nc, pushTimeoutMs: 300 });
    await until(
      () =>
        app.genApi.registry.resolve('secure', 'echo', null).ok &&
        app.genApi.nats!.discovery.instances('secure').length === 1,
      'the worker at the gateway',
    );
    const socket = await phoenixSocket(app.port, { user_id: 'u1' });
    try {
      const { channel, log } = await joinedChannel(socket, 'gen_api:lobby');
      const entries = await exchange(
        channel,
        log,
        'phoenix_gen_api',
        { request_id: requestId, service: 'secure', request_type: 'echo', args: { message: 'hi' } },
        2,
      );
      expect(entries).toEqual([
        ['on', resp(requestId, { result: { message: 'hi', user: 'u1' } })],
        ['push ok', 'echo'],
      ]);
    } finally {
      socket.disconnect();
    }
    await running.stop();
  } finally {
    await nc?.close();
    await app.close();
  }
}

/** What `genApi.connectNats` (gateway start) rejects with on `server` with `credentials`. */
async function gatewayStartFailure(
  server: NatsServer,
  credentials: NatsCredentials,
): Promise<NatsConnectError> {
  const gateway = createGateway({ logger: false });
  try {
    const genApi = new GenApi(gateway);
    const err = await genApi
      .connectNats({ servers: server.url, trustedNetwork: true, ...credentials })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(NatsConnectError);
    return err as NatsConnectError;
  } finally {
    await gateway.close();
  }
}

/** What `connectWorker` rejects with. */
async function workerFailure(
  server: NatsServer,
  credentials: NatsCredentials,
): Promise<NatsConnectError> {
  const err = await connectWorker({ servers: server.url, ...credentials }).then(
    async (nc) => {
      await nc.close();
      return null;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NatsConnectError);
  return err as NatsConnectError;
}

describe('user and password', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await natsServer('authorization { user: app, password: "p4ss word" }');
  });

  it('a gateway and a worker authenticate; a call round-trips', async () => {
    const creds = { user: 'app', pass: 'p4ss word' };
    await roundTrip(server, creds, creds, 'r-userpass');
  });

  it('a wrong password fails gateway start and the worker with a NATS auth error', async () => {
    const gateway = await gatewayStartFailure(server, { user: 'app', pass: 'nope' });
    expect(gateway.reason).toBe('auth');
    expect(gateway.code).toBe('ERR_NATS_CONNECT');
    expect(gateway.message).toMatch(/^NATS auth failed for gen-gateway .* Authorization Violation/);
    const worker = await workerFailure(server, { user: 'app', pass: 'nope' });
    expect(worker.reason).toBe('auth');
    expect(worker.message).toMatch(/^NATS auth failed for genapi-worker at nats:\/\/127\.0\.0\.1/);
  });

  it('no credentials at all is refused the same way', async () => {
    expect((await gatewayStartFailure(server, {})).reason).toBe('auth');
  });
});

describe('token', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await natsServer('authorization { token: "t0ken-for-tests" }');
  });

  it('a gateway and a worker authenticate; a call round-trips', async () => {
    await roundTrip(server, { token: 't0ken-for-tests' }, { token: 't0ken-for-tests' }, 'r-token');
  });

  it('a wrong token is refused', async () => {
    expect((await gatewayStartFailure(server, { token: 'other' })).reason).toBe('auth');
    expect((await workerFailure(server, { token: 'other' })).reason).toBe('auth');
  });
});

describe('nkey', () => {
  const gateway = nkeyUser();
  const worker = nkeyUser();
  let server: NatsServer;
  beforeAll(async () => {
    server = await natsServer(
      `authorization { users = [ { nkey: ${gateway.publicKey} }, { nkey: ${worker.publicKey} } ] }`,
    );
  });

  it('a gateway (seed file) and a worker (seed) authenticate; a call round-trips', async () => {
    const seedFile = file('gateway.nk', `${gateway.seed}\n`);
    await roundTrip(server, { nkeySeedFile: seedFile }, { nkeySeed: worker.seed }, 'r-nkey');
  });

  it('a seed the server does not know is refused', async () => {
    expect((await gatewayStartFailure(server, { nkeySeed: nkeyUser().seed })).reason).toBe('auth');
  });
});

describe('.creds (operator mode)', () => {
  const operator = new NatsOperator();
  let server: NatsServer;
  beforeAll(async () => {
    server = await natsServer(operator.serverConfig());
  });

  it('a gateway and a worker with creds files of one account; a call round-trips', async () => {
    const gateway = file('gateway.creds', operator.user('gateway').creds);
    const worker = file('worker.creds', operator.user('worker').creds);
    await roundTrip(server, { credsFile: gateway }, { credsFile: worker }, 'r-creds');
  });

  it('a user of another operator is refused; a missing creds file names its path', async () => {
    const stranger = file('stranger.creds', new NatsOperator().user('stranger').creds);
    expect((await gatewayStartFailure(server, { credsFile: stranger })).reason).toBe('auth');
    const missing = await workerFailure(server, { credsFile: join(dir, 'missing.creds') });
    expect(missing.reason).toBe('credentials');
    expect(missing.message).toContain(join(dir, 'missing.creds'));
  });

  it('the demo worker takes its creds from NATS_CREDS and serves the demo service', async () => {
    const app = await startGenApiApp({
      nats: server.url,
      natsOptions: { credsFile: file('gw2.creds', operator.user('gateway').creds) },
    });
    const worker = spawnTs('src/demo/worker.ts', [], {
      NATS_URL: server.url,
      NATS_CREDS: file('demo.creds', operator.user('demo-worker').creds),
    });
    try {
      await worker.logLine('demo worker ready', 30_000);
      await until(
        () => app.genApi.nats!.discovery.instances('demo').length === 1,
        'the demo worker at the gateway',
      );
    } finally {
      worker.kill('SIGTERM');
      await worker.exited;
      await app.close();
    }
  }, 60_000);
});

describe('TLS', () => {
  let mutual: NatsServer;
  let serverOnly: NatsServer;
  beforeAll(async () => {
    const tls = `cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}"`;
    mutual = await natsServer(`tls { ${tls}, ca_file: "${certs.ca}", verify: true }`);
    serverOnly = await natsServer(`tls { ${tls} }`);
  });

  it('server-verified TLS with a CA file: a call round-trips', async () => {
    const tls = { caFile: certs.ca };
    await roundTrip(serverOnly, { tls }, { tls }, 'r-tls');
  });

  it('mutual TLS with client certificates: a call round-trips', async () => {
    const tls = { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey };
    await roundTrip(mutual, { tls }, { tls }, 'r-mtls');
  });

  it('a server certificate not signed by the given CA (or the system CAs) fails with a TLS error', async () => {
    const other = await gatewayStartFailure(serverOnly, { tls: { caFile: certs.otherCa } });
    expect(other.reason).toBe('tls');
    expect(other.message).toMatch(/^NATS TLS failed for gen-gateway .*certificate/);
    expect((await workerFailure(serverOnly, { tls: true })).reason).toBe('tls');
    // Without any tls setting the client still upgrades when the server requires it, and fails alike.
    expect((await workerFailure(mutual, {})).reason).toBe('tls');
  });
});

describe('inboxPrefix', () => {
  // The gateway may subscribe to its own inboxes only; workers may not subscribe to them.
  const config = `authorization { users = [
    { user: gw, password: gw-pass, permissions: { subscribe: { allow: ">", deny: "_INBOX.>" } } }
    { user: worker, password: worker-pass, permissions: {
        publish: { allow: ["genapi.>", "$SRV.>"] }, allow_responses: true,
        subscribe: { allow: ">", deny: "_INBOX_gw.>" } } }
  ] }`;
  let server: NatsServer;
  beforeAll(async () => {
    server = await natsServer(config);
  });

  it('a gateway with inboxPrefix _INBOX_gw serves calls; its default inboxes are denied', async () => {
    await roundTrip(
      server,
      { user: 'gw', pass: 'gw-pass', inboxPrefix: '_INBOX_gw' },
      { user: 'worker', pass: 'worker-pass' },
      'r-inbox',
    );
    // The permissions bite: the gateway user may not subscribe to nats.js's default inboxes…
    expect(await subscribeError('gw', 'gw-pass', '_INBOX.anything')).toMatch(
      /Permissions Violation/,
    );
    // …and a worker may not read the gateway's.
    expect(await subscribeError('worker', 'worker-pass', '_INBOX_gw.>')).toMatch(
      /Permissions Violation/,
    );
  });

  /** The error a subscription of `user` to `subject` gets from the server. */
  async function subscribeError(user: string, pass: string, subject: string): Promise<string> {
    const nc = await connect({ servers: server.url, user, pass });
    try {
      const failed = deferred<string>();
      nc.subscribe(subject, {
        callback: (err) => {
          if (err) failed.resolve(err.message);
        },
      });
      await nc.flush();
      return await within(failed.promise, `a permissions error for ${user} on ${subject}`);
    } finally {
      await nc.close();
    }
  }
});

describe('settings', () => {
  const invalid = (nats: Record<string, unknown>) => () => validateConfig('gw.json', { nats });

  it('the config file accepts the credential, TLS and inbox keys', () => {
    expect(
      validateConfig('gw.json', {
        nats: {
          servers: 'tls://nats:4222',
          credsFile: '/etc/nats/gw.creds',
          tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' },
          inboxPrefix: '_INBOX_gateway',
        },
      }).nats,
    ).toMatchObject({ credsFile: '/etc/nats/gw.creds', inboxPrefix: '_INBOX_gateway' });
    expect(validateConfig('gw.json', { nats: { tls: true, token: 't' } }).nats).toBeDefined();
  });

  it('contradicting or malformed settings are refused at config load, naming the setting', () => {
    expect(invalid({ token: 't', user: 'u', pass: 'p' })).toThrow(
      /gw\.json: nats: NATS credentials contradict: .* not user and token/,
    );
    expect(invalid({ credsFile: '/a.creds', nkeySeed: nkeyUser().seed })).toThrow(/contradict/);
    expect(invalid({ user: 'u' })).toThrow(/"user" and "pass" go together/);
    expect(invalid({ nkeySeed: 'SAnotaseed' })).toThrow(/nkeySeed is not an nkey user seed/);
    expect(invalid({ tls: { certFile: '/c.pem' } })).toThrow(/"tls.certFile" and "tls.keyFile"/);
    expect(invalid({ tls: { ca: '/ca.pem' } })).toThrow(/unknown NATS setting "tls.ca"/);
    expect(invalid({ tls: 'yes' })).toThrow(/"tls" must be true, false or/);
    expect(invalid({ inboxPrefix: '_INBOX.*' })).toThrow(/"inboxPrefix" must be a subject/);
    expect(invalid({ token: 42 })).toThrow(/"token" must be a non-empty string/);
    expect(invalid({ passwd: 'x' })).toThrow(/unknown setting "nats.passwd"/);
    for (const nats of [{ token: 't', user: 'u', pass: 'p' }, { inboxPrefix: 'a..b' }])
      expect(invalid(nats)).toThrow(ConfigError);
  });

  it('connectWorker refuses contradicting credentials before connecting', async () => {
    await expect(
      connectWorker({ servers: 'nats://127.0.0.1:1', token: 't', credsFile: '/x' }),
    ).rejects.toThrow(InvalidArgumentError);
  });

  it('GEN_GATEWAY_NATS_* replace the config file credentials', () => {
    const config = { nats: { servers: 'nats://n:4222', token: 'from-file', inboxPrefix: '_I_gw' } };
    expect(withNatsCredentialEnv(config, {})).toBe(config);
    expect(
      withNatsCredentialEnv(config, {
        GEN_GATEWAY_NATS_USER: 'gw',
        GEN_GATEWAY_NATS_PASS: 'secret',
        GEN_GATEWAY_NATS_TOKEN: '',
      }).nats,
    ).toEqual({ servers: 'nats://n:4222', inboxPrefix: '_I_gw', user: 'gw', pass: 'secret' });
    expect(withNatsCredentialEnv({}, { GEN_GATEWAY_NATS_CREDS: '/run/gw.creds' }).nats).toEqual({
      credsFile: '/run/gw.creds',
    });
    expect(() =>
      withNatsCredentialEnv(config, {
        GEN_GATEWAY_NATS_TOKEN: 't',
        GEN_GATEWAY_NATS_CREDS: '/run/gw.creds',
      }),
    ).toThrow(/environment \(GEN_GATEWAY_NATS_CREDS.*contradict/);
  });

  it('workerConnectOptionsFromEnv reads NATS_* (empty counts as unset)', () => {
    expect(
      workerConnectOptionsFromEnv({
        NATS_URL: 'tls://a:4222, tls://b:4222',
        NATS_CREDS: '/w.creds',
        NATS_CA: '/ca.pem',
        NATS_CERT: '/c.pem',
        NATS_KEY: '/k.pem',
        NATS_INBOX_PREFIX: '_INBOX_w',
        NATS_TOKEN: '',
      }),
    ).toEqual({
      servers: ['tls://a:4222', 'tls://b:4222'],
      credsFile: '/w.creds',
      tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' },
      inboxPrefix: '_INBOX_w',
    });
    expect(
      workerConnectOptionsFromEnv({ NATS_USER: 'w', NATS_PASS: ' p ', NATS_NKEY_SEED: 'S' }),
    ).toEqual({ user: 'w', pass: ' p ', nkeySeed: 'S' });
    expect(workerConnectOptionsFromEnv({})).toEqual({});
  });
});
