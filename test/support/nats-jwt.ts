/**
 * NATS trust material for tests: operator-mode JWTs (operator, accounts, users) minted with the
 * nkeys nats.js ships, `.creds` files, and a CA with server and client certificates made by
 * `openssl`. Everything lives in a directory the test owns and removes.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from '@nats-io/nats-core';

type KeyPair = ReturnType<typeof nkeys.createUser>;

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const base64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

/** No limit, as the NATS JWT library writes it (an absent limit would read as 0). */
const NO_LIMIT = -1;

/**
 * A JWT as nats-server reads it: ed25519-nkey signed by `issuer`, `jti` the SHA-256 of the claims
 * (base32, as the Go library makes it).
 */
export function signJwt(
  issuer: KeyPair,
  subject: string,
  name: string,
  nats: Record<string, unknown>,
): string {
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const claims: Record<string, unknown> = {
    jti: '',
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  claims.jti = base32(createHash('sha256').update(JSON.stringify(claims)).digest());
  const body = `${header}.${base64url(JSON.stringify(claims))}`;
  return `${body}.${base64url(issuer.sign(new TextEncoder().encode(body)))}`;
}

function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** A user of an account: its JWT, seed and `.creds` text. */
export interface NatsJwtUser {
  publicKey: string;
  seed: string;
  jwt: string;
  creds: string;
}

/**
 * Operator mode for one test server: an operator, a system account and an application account
 * (`APP`); `user()` mints users of APP (optionally with permissions), `serverConfig` is the
 * matching nats-server config (memory resolver, preloaded accounts).
 */
export class NatsOperator {
  private readonly operator = nkeys.createOperator();
  private readonly system = nkeys.createAccount();
  private readonly account = nkeys.createAccount();

  /** A user of APP; `permissions` is the JWT's `pub`/`sub` ({ allow, deny }) and `resp`. */
  user(name: string, permissions: Record<string, unknown> = {}): NatsJwtUser {
    const user = nkeys.createUser();
    const jwt = signJwt(this.account, user.getPublicKey(), name, {
      type: 'user',
      pub: {},
      sub: {},
      subs: NO_LIMIT,
      data: NO_LIMIT,
      payload: NO_LIMIT,
      ...permissions,
    });
    const seed = text(user.getSeed());
    return { publicKey: user.getPublicKey(), seed, jwt, creds: credsFile(jwt, seed) };
  }

  /** nats-server config text: trust the operator, accounts preloaded into a memory resolver. */
  serverConfig(): string {
    const operatorJwt = signJwt(this.operator, this.operator.getPublicKey(), 'test-operator', {
      type: 'operator',
      system_account: this.system.getPublicKey(),
    });
    const account = (key: KeyPair, name: string) =>
      signJwt(this.operator, key.getPublicKey(), name, {
        type: 'account',
        limits: {
          subs: NO_LIMIT,
          data: NO_LIMIT,
          payload: NO_LIMIT,
          imports: NO_LIMIT,
          exports: NO_LIMIT,
          wildcards: true,
          conn: NO_LIMIT,
          leaf: NO_LIMIT,
        },
      });
    return [
      `operator: ${operatorJwt}`,
      `system_account: ${this.system.getPublicKey()}`,
      'resolver: MEMORY',
      'resolver_preload: {',
      `  ${this.system.getPublicKey()}: ${account(this.system, 'SYS')}`,
      `  ${this.account.getPublicKey()}: ${account(this.account, 'APP')}`,
      '}',
      '',
    ].join('\n');
  }
}

/** The `.creds` file format `nsc` writes (nats.js's credsAuthenticator parses the two blocks). */
export function credsFile(jwt: string, seed: string): string {
  return [
    '-----BEGIN NATS USER JWT-----',
    jwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    'NKEYs are sensitive and should be treated as secrets.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    seed,
    '------END USER NKEY SEED------',
    '',
  ].join('\n');
}

/** An nkey user for `authorization { users = [{ nkey: publicKey }] }`. */
export function nkeyUser(): { publicKey: string; seed: string } {
  const user = nkeys.createUser();
  return { publicKey: user.getPublicKey(), seed: text(user.getSeed()) };
}

/** PEM files made by `makeCertificates`. */
export interface TestCertificates {
  /** The test CA (signs the others). */
  ca: string;
  /** Server certificate for 127.0.0.1 / localhost, and its key. */
  serverCert: string;
  serverKey: string;
  /** Client certificate (clientAuth), and its key. */
  clientCert: string;
  clientKey: string;
  /** A second CA that signed nothing here: trusting it alone must fail verification. */
  otherCa: string;
}

/** A CA, a server certificate (IP 127.0.0.1) and a client certificate, in `dir`. */
export function makeCertificates(dir: string): TestCertificates {
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca'])
    openssl(
      'req',
      '-x509',
      ...key,
      '-keyout',
      path(`${ca}.key`),
      '-out',
      path(`${ca}.pem`),
      '-days',
      '2',
      '-subj',
      `/CN=gen-gateway test ${ca}`,
    );
  const issue = (name: string, extensions: string) => {
    writeFileSync(path(`${name}.ext`), extensions);
    openssl(
      'req',
      ...key,
      '-keyout',
      path(`${name}.key`),
      '-out',
      path(`${name}.csr`),
      '-subj',
      `/CN=${name}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path('ca.pem'),
      '-CAkey',
      path('ca.key'),
      '-CAcreateserial',
      '-out',
      path(`${name}.pem`),
      '-days',
      '2',
      '-extfile',
      path(`${name}.ext`),
    );
  };
  issue('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: path('ca.pem'),
    serverCert: path('server.pem'),
    serverKey: path('server.key'),
    clientCert: path('client.pem'),
    clientKey: path('client.key'),
    otherCa: path('other-ca.pem'),
  };
}
