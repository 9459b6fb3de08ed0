import { readFileSync } from 'node:fs';
import {
  createInbox,
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
  type TlsOptions,
} from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { CancelledError, GatewayError, InvalidArgumentError } from '../errors.js';
import { sleep } from '../util/sleep.js';

/**
 * TLS to NATS: PEM file paths, read by nats.js on every (re)connect. `caFile` verifies the server
 * (default: the system CAs); `certFile` + `keyFile` present a client certificate (mutual TLS).
 */
export interface NatsTlsOptions {
  /** CA certificate(s) that sign the server's certificate. Default: the system CAs. */
  caFile?: string;
  /** Client certificate for mutual TLS (with `keyFile`). */
  certFile?: string;
  /** Private key of `certFile`. */
  keyFile?: string;
}

/**
 * Who a NATS connection authenticates as and how it is secured, shared by the gateway
 * (`nats.*` in its config) and the worker SDK (`connectWorker`). At most one of `user`/`pass`,
 * `token`, `nkeySeed`, `nkeySeedFile` and `credsFile`; none means no authentication.
 */
export interface NatsCredentials {
  /** NATS user (with `pass`). */
  user?: string;
  /** NATS password (with `user`). */
  pass?: string;
  /** NATS token. */
  token?: string;
  /** An nkey user's seed ("SU…"); the server knows its public key. */
  nkeySeed?: string;
  /** A file holding an nkey user's seed, read at each (re)connect. */
  nkeySeedFile?: string;
  /** A `.creds` file (user JWT + seed, operator mode), read at each (re)connect. */
  credsFile?: string;
  /**
   * TLS: `true` requires TLS verified by the system CAs; an object gives a CA and/or a client
   * certificate. Default: none (plain TCP unless the server requires TLS).
   */
  tls?: boolean | NatsTlsOptions;
  /**
   * Prefix of this connection's reply inboxes. Default nats.js's `_INBOX`; a hardened deployment
   * gives each role its own (e.g. `_INBOX_gateway`) and lets only that role subscribe to it.
   */
  inboxPrefix?: string;
}

/** The defaults of `NatsConnectionOptions`. */
export const NATS_CONNECTION_DEFAULTS = { reconnectTimeWaitMs: 250 } as const;

/**
 * Where a gateway connects to NATS and as whom: shared by its gen_api link
 * (`genApi.connectNats`) and its cluster connection (`gateway.connectCluster`).
 */
export interface NatsConnectionOptions extends NatsCredentials {
  /** NATS server URL(s), e.g. "nats://127.0.0.1:4222". */
  servers: string | string[];
  /** Subject prefix shared with the other gateways and the workers. Default "genapi". */
  prefix?: string;
  /** Delay between reconnect attempts (jittered by the client). Default 250 ms (NATS_CONNECTION_DEFAULTS). */
  reconnectTimeWaitMs?: number;
}

/** The credential settings, each a way to authenticate (user and pass count as one). */
const AUTH_METHODS = ['user', 'token', 'nkeySeed', 'nkeySeedFile', 'credsFile'] as const;
const CREDENTIAL_KEYS = [...AUTH_METHODS, 'pass', 'inboxPrefix'] as const;
const TLS_KEYS = new Set(['caFile', 'certFile', 'keyFile']);

/**
 * Checks credential and TLS settings (types, one way to authenticate, `user` with `pass`,
 * `certFile` with `keyFile`, a valid seed and inbox prefix); throws InvalidArgumentError naming
 * the setting. Config loading and every connect call it.
 */
export function checkNatsCredentials(options: NatsCredentials): void {
  const values = options as Record<string, unknown>;
  for (const key of CREDENTIAL_KEYS) {
    const value = values[key];
    if (value !== undefined && (typeof value !== 'string' || value === ''))
      throw new InvalidArgumentError(`NATS "${key}" must be a non-empty string`);
  }
  const given = AUTH_METHODS.filter((key) => values[key] !== undefined);
  if (given.length > 1)
    throw new InvalidArgumentError(
      `NATS credentials contradict: give one of user/pass, token, nkeySeed, nkeySeedFile or credsFile, not ${given.join(' and ')}`,
    );
  if ((options.user === undefined) !== (options.pass === undefined))
    throw new InvalidArgumentError('NATS "user" and "pass" go together: give both or neither');
  if (options.nkeySeed !== undefined) userSeedBytes(options.nkeySeed, 'nkeySeed');
  if (options.inboxPrefix !== undefined && !isSubjectPrefix(options.inboxPrefix))
    throw new InvalidArgumentError(
      `NATS "inboxPrefix" must be a subject without wildcards or empty tokens, got ${JSON.stringify(options.inboxPrefix)}`,
    );
  checkTls(options.tls);
}

function checkTls(tls: unknown): void {
  if (tls === undefined || typeof tls === 'boolean') return;
  if (tls === null || typeof tls !== 'object' || Array.isArray(tls))
    throw new InvalidArgumentError(
      'NATS "tls" must be true, false or { caFile, certFile, keyFile }',
    );
  const files = tls as Record<string, unknown>;
  for (const [key, value] of Object.entries(files)) {
    if (!TLS_KEYS.has(key)) throw new InvalidArgumentError(`unknown NATS setting "tls.${key}"`);
    if (typeof value !== 'string' || value === '')
      throw new InvalidArgumentError(`NATS "tls.${key}" must be a file path`);
  }
  if ((files.certFile === undefined) !== (files.keyFile === undefined))
    throw new InvalidArgumentError(
      'NATS "tls.certFile" and "tls.keyFile" go together (a client certificate and its key)',
    );
}

/** Whether a connection with these options presents any credential (a login or a client certificate). */
export function presentsCredentials(options: NatsCredentials): boolean {
  const values = options as Record<string, unknown>;
  return (
    AUTH_METHODS.some((key) => values[key] !== undefined) ||
    (typeof options.tls === 'object' && options.tls.certFile !== undefined)
  );
}

/** A subject prefix nats.js can put inboxes under: dot-separated tokens, no wildcards or spaces. */
function isSubjectPrefix(prefix: string): boolean {
  return prefix.split('.').every((token) => token !== '' && !/[\s*>]/.test(token));
}

/** A user seed's bytes, or InvalidArgumentError naming `what` (the seed itself is never shown). */
function userSeedBytes(seed: string, what: string): Uint8Array {
  const bytes = new TextEncoder().encode(seed.trim());
  try {
    if (nkeys.fromSeed(bytes).getPublicKey().startsWith('U')) return bytes;
  } catch {
    // Reported below without the secret.
  }
  throw new InvalidArgumentError(`NATS ${what} is not an nkey user seed ("SU…")`);
}

/**
 * A file read now (a missing file fails the connect, with its path) and again at every later
 * (re)connect, so rotated credentials are picked up; while the file cannot be read, the last
 * good content is used.
 */
function fileSource(path: string, what: string): () => Uint8Array {
  const read = (): Uint8Array => readFileSync(path);
  let last: Uint8Array;
  try {
    last = read();
  } catch (err) {
    throw new NatsConnectError(`cannot read the NATS ${what} ${path}: ${(err as Error).message}`, {
      cause: err,
      reason: 'credentials',
    });
  }
  return () => {
    try {
      last = read();
    } catch {
      // Keep the last good content: a rotation in progress must not stop reconnects.
    }
    return last;
  };
}

function authenticator(options: NatsCredentials): Authenticator | undefined {
  if (options.user !== undefined)
    return usernamePasswordAuthenticator(options.user, options.pass ?? '');
  if (options.token !== undefined) return tokenAuthenticator(options.token);
  if (options.nkeySeed !== undefined)
    return nkeyAuthenticator(userSeedBytes(options.nkeySeed, 'nkeySeed'));
  if (options.nkeySeedFile !== undefined) {
    const source = fileSource(options.nkeySeedFile, 'nkey seed file');
    const seed = () => userSeedBytes(new TextDecoder().decode(source()), 'nkeySeedFile content');
    seed();
    return nkeyAuthenticator(seed);
  }
  if (options.credsFile !== undefined)
    return credsAuthenticator(fileSource(options.credsFile, 'credentials file'));
  return undefined;
}

function tlsOptions(tls: NatsCredentials['tls']): TlsOptions | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return {};
  return { ...tls };
}

/**
 * The credential, TLS and inbox part of nats.js connection options (`authenticator`, `tls`,
 * `inboxPrefix`), for the gateway's connections and the worker SDK alike. Checks the settings
 * first (InvalidArgumentError) and reads credential files now (NatsConnectError when one cannot
 * be read).
 */
export function natsClientOptions(options: NatsCredentials): ConnectionOptions {
  checkNatsCredentials(options);
  const auth = authenticator(options);
  const tls = tlsOptions(options.tls);
  return {
    ...(auth === undefined ? {} : { authenticator: auth }),
    ...(tls === undefined ? {} : { tls }),
    ...(options.inboxPrefix === undefined ? {} : { inboxPrefix: options.inboxPrefix }),
  };
}

/**
 * nats.js options for a gateway connection named `name`: it waits for the first connect and then
 * reconnects for ever (requests fail fast while it is down; the gateway keeps serving).
 */
export function gatewayConnectOptions(
  options: NatsConnectionOptions,
  name: string,
): ConnectionOptions {
  return {
    servers: options.servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectTimeWaitMs ?? NATS_CONNECTION_DEFAULTS.reconnectTimeWaitMs,
    waitOnFirstConnect: true,
    ...natsClientOptions(options),
  };
}

/** What stopped a NATS connection from being made: `auth`, `tls`, `credentials` (a file) or `connect`. */
export type NatsConnectFailure = 'auth' | 'tls' | 'credentials' | 'connect';

/**
 * A NATS connection could not be made: the server refused the credentials (`auth`), TLS failed
 * (`tls`), a credentials file could not be read (`credentials`), or anything else (`connect`).
 * `genApi.connectNats` (so gateway start) and `connectWorker` reject with it; `cause` is
 * nats.js's error.
 */
export class NatsConnectError extends GatewayError {
  override readonly name = 'NatsConnectError';
  /** Which step failed. */
  readonly reason: NatsConnectFailure;

  constructor(message?: string, options?: ErrorOptions & { reason?: NatsConnectFailure }) {
    super('ERR_NATS_CONNECT', message, options);
    this.reason = options?.reason ?? 'connect';
  }
}

/** What nats.js rejects a connect with (an Error, or in odd environments anything). */
interface NatsClientFailure {
  name: string;
  message: string;
  code?: unknown;
}

/**
 * TLS failures surface as Node's certificate and SSL error codes, or as nats.js's own errors about
 * TLS (a server without it, or a client refusing it), which carry no code: those name "tls".
 */
function isTlsFailure(err: NatsClientFailure): boolean {
  return (
    (typeof err.code === 'string' &&
      /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/i.test(err.code)) ||
    /\btls\b/i.test(err.message)
  );
}

/** nats.js's connect failure as a NatsConnectError saying which step failed and for whom. */
function connectFailure(
  err: unknown,
  who: string,
  servers: string,
  tls: boolean,
): NatsConnectError {
  if (err instanceof NatsConnectError) return err;
  const error: NatsClientFailure = err instanceof Error ? err : { name: '', message: String(err) };
  if (error.name === 'AuthorizationError' || error.name === 'UserAuthenticationExpiredError')
    return new NatsConnectError(
      `NATS auth failed for ${who} at ${servers}: ${error.message} (check user/pass, token, nkey seed or creds file)`,
      { cause: err, reason: 'auth' },
    );
  // A server refusing a TLS 1.3 client certificate (or the lack of one) alerts after the
  // handshake, which nats.js drops: all it reports is the connect timeout.
  if (tls && error.name === 'TimeoutError')
    return new NatsConnectError(
      `NATS TLS failed for ${who} at ${servers}: no answer after the TLS handshake (${error.message}); a server that verifies clients drops one without a certificate it trusts`,
      { cause: err, reason: 'tls' },
    );
  if (isTlsFailure(error))
    return new NatsConnectError(`NATS TLS failed for ${who} at ${servers}: ${error.message}`, {
      cause: err,
      reason: 'tls',
    });
  return new NatsConnectError(`cannot connect ${who} to NATS at ${servers}: ${error.message}`, {
    cause: err,
    reason: 'connect',
  });
}

/**
 * Connects with nats.js; a failure rejects with a NatsConnectError naming `who`, the servers and
 * the step that failed (auth, TLS, …). With `waitOnFirstConnect`, nats.js retries a first connect
 * that fails for any reason for ever, so a refused certificate would hang start-up silently: one
 * plain attempt goes first, and only a failure that is not auth, TLS or a credentials file (the
 * servers are not up yet) falls back to waiting.
 */
export async function connectNats(
  options: ConnectionOptions,
  who: string,
): Promise<NatsConnection> {
  const servers = [options.servers ?? []].flat().join(', ');
  const tls = options.tls !== undefined && options.tls !== null;
  if (options.waitOnFirstConnect) {
    try {
      return await connect({ ...options, waitOnFirstConnect: false });
    } catch (err) {
      const failure = connectFailure(err, who, servers, tls);
      if (failure.reason !== 'connect') throw failure;
    }
  }
  try {
    return await connect(options);
  } catch (err) {
    throw connectFailure(err, who, servers, tls);
  }
}

/** Told of each failed attempt of `connectNatsRetrying` (the caller decides what to log). */
export type NatsAttemptFailed = (failure: NatsConnectError, attempt: number) => void;

/**
 * Connects like `connectNats`, but a first connect that fails only because no server answers
 * (`connect`) is tried again every `retryMs`, for ever: one plain attempt at a time, so a failure
 * that would fail every retry (auth, TLS, a credentials file) still rejects at once, whenever it
 * shows. `signal` stops the retries (CancelledError).
 */
export async function connectNatsRetrying(
  options: ConnectionOptions,
  who: string,
  retryMs: number,
  onAttemptFailed: NatsAttemptFailed,
  signal: AbortSignal,
): Promise<NatsConnection> {
  const servers = [options.servers ?? []].flat().join(', ');
  const tls = options.tls !== undefined && options.tls !== null;
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw new CancelledError(`${who}: connecting to NATS was cancelled`);
    try {
      const nc = await connect({ ...options, waitOnFirstConnect: false });
      if (!signal.aborted) return nc;
      await nc.close();
      continue;
    } catch (err) {
      const failure = connectFailure(err, who, servers, tls);
      if (failure.reason !== 'connect') throw failure;
      onAttemptFailed(failure, attempt);
    }
    await sleep(retryMs, signal);
  }
}

/**
 * A new reply inbox under `nc`'s `inboxPrefix` (nats.js's `createInbox()` alone always uses
 * `_INBOX`, which a hardened server does not let this connection subscribe to).
 */
export function natsInbox(nc: NatsConnection): string {
  // nats.js keeps the options on the connection (its own request() reads them there).
  return createInbox((nc as { options?: ConnectionOptions }).options?.inboxPrefix);
}
