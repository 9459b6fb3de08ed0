/**
 * Key sources of the `jwt` strategy that live in the config: a shared secret (HS*) or a PEM public
 * key (RS*, PS*, ES*, EdDSA), each checked against the algorithms it can verify. The JWKS source is
 * jwt-jwks.ts.
 */
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import type { JWTVerifyGetKey } from 'jose';
import { ConfigError } from '../config/errors.js';
import { JWT_DEFAULTS, JWT_MIN_SECRET_BYTES } from './jwt-options.js';

/** The verification key (or key lookup) and the algorithms it is used with. */
export interface Resolved {
  readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  readonly algorithms: readonly string[];
}

/** The HMAC algorithms (a `secret`) and the asymmetric ones (a public key or a JWKS). */
export const HMAC: ReadonlySet<string> = new Set<string>(JWT_DEFAULTS.hmacAlgorithms);
export const ASYMMETRIC: ReadonlySet<string> = new Set<string>(JWT_DEFAULTS.jwksAlgorithms);
/** RSA keys (RS*, PS*) below this modulus are refused (jose refuses them at verify time too). */
const MIN_RSA_BITS = 2048;

/** The `secret` option as HMAC keys; throws `ConfigError` when it is short or an algorithm does not fit. */
export function fromSecret(secret: unknown, algorithms: readonly string[] | undefined): Resolved {
  if (typeof secret !== 'string') throw new ConfigError('auth.jwt.secret must be a string');
  const bytes = new TextEncoder().encode(secret);
  if (bytes.length < JWT_MIN_SECRET_BYTES) {
    throw new ConfigError(
      `auth.jwt.secret must be at least ${JWT_MIN_SECRET_BYTES} bytes (it has ${bytes.length}): ` +
        'a shorter HMAC key can be guessed offline from any token, and then anyone can mint tokens',
    );
  }
  const chosen = algorithms ?? JWT_DEFAULTS.hmacAlgorithms;
  const unfit = chosen.filter((alg) => !HMAC.has(alg));
  if (unfit.length > 0) {
    throw new ConfigError(
      `auth.jwt.algorithms: ${unfit.join(', ')} cannot be verified with a secret (HS256, HS384, HS512 can)`,
    );
  }
  return { key: hmacKeys(bytes), algorithms: chosen };
}

/**
 * The secret as WebCrypto HMAC keys, imported once per algorithm: given the raw bytes, jose
 * imports them again on every verification (about 50 µs of a connect's CPU).
 */
function hmacKeys(secret: Uint8Array): JWTVerifyGetKey {
  const imported = new Map<string, Promise<webcrypto.CryptoKey>>();
  return (header) => {
    const hash = HMAC_HASH[header.alg];
    // Not an HMAC alg: the raw bytes, which jose refuses for it (the algorithms list already does).
    if (hash === undefined) return secret;
    let key = imported.get(header.alg);
    if (key === undefined) {
      key = webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash }, false, ['verify']);
      imported.set(header.alg, key);
    }
    return key;
  };
}

const HMAC_HASH: Readonly<Record<string, string>> = {
  HS256: 'SHA-256',
  HS384: 'SHA-384',
  HS512: 'SHA-512',
};

/** The `publicKey` option as a KeyObject; throws `ConfigError` when it or an algorithm does not fit. */
export function fromPublicKey(pem: unknown, algorithms: readonly string[] | undefined): Resolved {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN ')) {
    throw new ConfigError('auth.jwt.publicKey must be a PEM string (-----BEGIN PUBLIC KEY-----)');
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError(
      'auth.jwt.publicKey is a private key: give the public key (the gateway only verifies)',
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new ConfigError(
      `auth.jwt.publicKey is not a readable PEM public key: ${(error as Error).message}`,
    );
  }
  const { kind, fits } = keyAlgorithms(key);
  const chosen = algorithms ?? fits;
  const unfit = chosen.filter((alg) => !fits.includes(alg));
  if (unfit.length > 0) {
    throw new ConfigError(
      `auth.jwt.algorithms: ${unfit.join(', ')} cannot be verified with the publicKey (${kind}; ${fits.join(', ')} can)`,
    );
  }
  return { key, algorithms: chosen };
}

/** The algorithms a public key verifies, and what it is (for messages). */
function keyAlgorithms(key: KeyObject): { kind: string; fits: readonly string[] } {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) {
        throw new ConfigError(
          `auth.jwt.publicKey is a ${bits}-bit RSA key: at least ${MIN_RSA_BITS} bits are required`,
        );
      }
      return { kind: 'an RSA key', fits: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] };
    }
    case 'rsa-pss':
      // jose cannot use id-RSASSA-PSS keys; the same key as rsaEncryption verifies PS* too.
      throw new ConfigError(
        'auth.jwt.publicKey is an RSA-PSS (id-RSASSA-PSS) key, which jose cannot use: give the same key as a plain RSA public key (it verifies PS256/384/512 too)',
      );
    case 'ec': {
      const alg = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }[
        details.namedCurve as string
      ];
      if (alg === undefined) {
        throw new ConfigError(
          `auth.jwt.publicKey is an EC key on ${details.namedCurve ?? 'an unknown curve'}: P-256, P-384 and P-521 are supported`,
        );
      }
      return { kind: `an EC key (${details.namedCurve})`, fits: [alg] };
    }
    case 'ed25519':
      return { kind: 'an Ed25519 key', fits: ['EdDSA', 'Ed25519'] };
    default:
      throw new ConfigError(
        `auth.jwt.publicKey has key type ${key.asymmetricKeyType ?? 'unknown'}: RSA, EC (P-256/384/521) and Ed25519 keys are supported`,
      );
  }
}
