/**
 * The `jwt` strategy (config `auth.jwt`): a JSON Web Token, verified with `jose` against a shared
 * secret (HS*), a PEM public key (RS*, PS*, ES*, EdDSA) or a JWKS fetched over HTTP, becomes an
 * Identity. Options are checked here, once, so a bad config fails at startup with the setting's
 * name; `authenticate` never throws. protocol/auth.md ("jwt") is the user-facing description.
 */
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import {
  createRemoteJWKSet,
  customFetch,
  errors,
  jwtVerify,
  type FetchImplementation,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { ConfigError } from '../config/errors.js';
import { GatewayError } from '../errors.js';
import {
  authFailure,
  type AuthFailure,
  type AuthFailureReason,
  type AuthRequest,
  type AuthStrategy,
  type Identity,
} from './types.js';

/** A claim: a top-level claim name, or a path into nested objects (`["realm_access", "roles"]`). */
export type JwtClaimPath = string | readonly string[];

/** Which claims give the identity (`auth.jwt.claims`). */
export interface JwtClaimMapping {
  /** The user id: a string, or an integer (becomes its decimal form); required. Default `sub`. */
  userId?: JwtClaimPath;
  /** The device id: a string or an integer; absent or null gives null. Default `device_id`. */
  deviceId?: JwtClaimPath;
  /** Roles: an array of strings, or one space-separated string (OAuth `scope` style); absent gives none. Default `roles`. */
  roles?: JwtClaimPath;
}

/** The JWKS cache and fetches (`auth.jwt.jwks`); only with `jwksUrl`. */
export interface JwtJwksOptions {
  /** Keys fetched longer ago than this are fetched again before use. Default 600 000 ms (10 min). */
  cacheMaxAgeMs?: number;
  /** A token whose `kid` is not in the cached set refetches the set at most once per this span (the rate limit on refetches); a `kid` still unknown is invalid. Default 30 000 ms. */
  cooldownMs?: number;
  /** A JWKS request that takes longer is abandoned (the connect is refused, `unavailable`). Default 5 000 ms. */
  timeoutMs?: number;
  /** After a failed fetch, connects within this span are refused `unavailable` without another request, so an outage does not turn every connect into a request to the JWKS server. Default 1 000 ms. */
  failureCooldownMs?: number;
}

/**
 * Options of the `jwt` strategy (`auth.jwt` in the config file). Exactly one of `secret`,
 * `publicKey`, `jwksUrl`. Defaults are in `JWT_DEFAULTS`.
 */
export interface JwtOptions {
  /** Shared secret for HS256/384/512 (its UTF-8 bytes); at least 32 bytes (`JWT_MIN_SECRET_BYTES`). */
  secret?: string;
  /** PEM public key (SPKI `BEGIN PUBLIC KEY`, PKCS#1 RSA, or an X.509 certificate); its type sets the algorithms. */
  publicKey?: string;
  /** http(s) URL of a JSON Web Key Set; keys are picked by the token's `kid` and `alg`. */
  jwksUrl?: string;
  /** Accepted `alg` values. Default: HS256/384/512 with `secret`; what the key can verify with `publicKey`; every asymmetric algorithm with `jwksUrl`. `none` is never accepted. */
  algorithms?: readonly string[];
  /** Required `iss` (one of them). Default: not checked. */
  issuer?: string | readonly string[];
  /** Required `aud` (the token's `aud` must contain one of them). Default: not checked. */
  audience?: string | readonly string[];
  /** Clock skew allowed on `nbf` (a token from an issuer whose clock runs ahead), in seconds. `exp` gets none: the socket closes at `exp`. Default 30. */
  clockToleranceSec?: number;
  /** Which claims give user id, device id and roles. Default `sub`, `device_id`, `roles`. */
  claims?: JwtClaimMapping;
  /** Claims copied into the socket assigns (under their own names): a list, or `all` (every claim but the registered ones and those mapped above). Default none. */
  assignClaims?: readonly string[] | 'all';
  /** JWKS cache and fetch limits (only with `jwksUrl`). */
  jwks?: JwtJwksOptions;
  /** Longer tokens are refused (`invalid`) before any decoding, in characters. Default 16 384. */
  maxTokenLength?: number;
}

/** Shortest `secret` accepted, in bytes: HS256 wants a key at least as long as its 256-bit hash (RFC 7518 §3.2); a shorter one can be guessed offline from any token a client holds, and whoever guesses it mints tokens for anyone. */
export const JWT_MIN_SECRET_BYTES = 32;

/** Defaults of `JwtOptions` (`auth.jwt`). */
export const JWT_DEFAULTS = {
  /** With `secret`. */
  hmacAlgorithms: ['HS256', 'HS384', 'HS512'],
  /** With `jwksUrl` (the key's `kty`/`crv` must still fit the algorithm). */
  jwksAlgorithms: [
    'RS256',
    'RS384',
    'RS512',
    'PS256',
    'PS384',
    'PS512',
    'ES256',
    'ES384',
    'ES512',
    'EdDSA',
    'Ed25519',
  ],
  clockToleranceSec: 30,
  claims: { userId: 'sub', deviceId: 'device_id', roles: 'roles' },
  assignClaims: [] as readonly string[],
  jwks: { cacheMaxAgeMs: 600_000, cooldownMs: 30_000, timeoutMs: 5_000, failureCooldownMs: 1_000 },
  maxTokenLength: 16_384,
} as const;

/** Claims `assignClaims: 'all'` leaves out: they describe the token, not the user. */
const REGISTERED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti']);
const HMAC = new Set<string>(JWT_DEFAULTS.hmacAlgorithms);
const ASYMMETRIC = new Set<string>(JWT_DEFAULTS.jwksAlgorithms);
const OPTION_KEYS = new Set([
  'secret',
  'publicKey',
  'jwksUrl',
  'algorithms',
  'issuer',
  'audience',
  'clockToleranceSec',
  'claims',
  'assignClaims',
  'jwks',
  'maxTokenLength',
]);
/** RSA keys (RS*, PS*) below this modulus are refused (jose refuses them at verify time too). */
const MIN_RSA_BITS = 2048;
/** What a compact JWS looks like: three base64url parts. Anything else is `malformed` before jose sees it. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The JWKS could not be fetched or used: the connect fails `unavailable`, not `invalid`. */
class JwksUnavailable extends GatewayError {
  override readonly name = 'JwksUnavailable';
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_JWKS_UNAVAILABLE', message, options);
  }
}

interface Resolved {
  readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  readonly algorithms: readonly string[];
}

/**
 * The `jwt` strategy: verifies the token's signature, `alg`, `iss`, `aud`, `nbf` and `exp` and maps
 * its claims to an Identity. Throws `ConfigError` for bad options (at startup). `now` is the wall
 * clock in epoch ms for the time claims (tests inject one); the JWKS cache runs on the system clock.
 */
export function createJwtStrategy(options: JwtOptions, now: () => number = Date.now): AuthStrategy {
  const config = checkOptions(options);
  const verifyOptions = (): JWTVerifyOptions => ({
    algorithms: [...config.resolved.algorithms],
    ...(config.issuer !== undefined ? { issuer: [...config.issuer] } : {}),
    ...(config.audience !== undefined ? { audience: [...config.audience] } : {}),
    clockTolerance: config.clockToleranceSec,
    currentDate: new Date(now()),
  });

  async function verify(token: string): Promise<JWTPayload> {
    const opts = verifyOptions();
    const key = config.resolved.key;
    try {
      return (await jwtVerify(token, key, opts)).payload;
    } catch (error) {
      // A token without `kid` and a JWKS with several keys for its alg: try each (jose leaves
      // this to the caller); the first whose signature holds decides.
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      for await (const candidate of error) {
        try {
          return (await jwtVerify(token, candidate, opts)).payload;
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }

  return {
    name: 'jwt',
    async authenticate(request: AuthRequest): Promise<Identity | AuthFailure> {
      const token = request.token;
      if (token === null || token === '') return authFailure('missing', 'jwt: no token');
      // The contract says string | null; a params value of another shape must not throw here.
      if (typeof token !== 'string')
        return authFailure('malformed', 'jwt: the token is not a string');
      if (token.length > config.maxTokenLength) {
        return authFailure(
          'invalid',
          `jwt: the token is longer than maxTokenLength (${token.length} > ${config.maxTokenLength})`,
        );
      }
      if (!COMPACT_JWS.test(token)) {
        return authFailure(
          'malformed',
          'jwt: the token is not a compact JWS (three base64url parts)',
        );
      }
      let payload: JWTPayload;
      try {
        payload = await verify(token);
      } catch (error) {
        const [reason, message] = classify(error);
        return authFailure(reason, `jwt: ${message}`);
      }
      // `exp` on the gateway's clock, without tolerance: the socket is closed at `expiresAt`, so
      // a token accepted past it would be closed at once and the client would reconnect in a loop.
      if (typeof payload.exp === 'number' && payload.exp * 1000 <= now()) {
        return authFailure('expired', 'jwt: "exp" claim timestamp check failed');
      }
      return identityOf(payload, config);
    },
  };
}

/** A jose (or fetch) error as a failure reason and a log message. */
function classify(error: unknown): [AuthFailureReason, string] {
  if (error instanceof JwksUnavailable) return ['unavailable', error.message];
  if (error instanceof errors.JWTExpired) return ['expired', error.message];
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return ['malformed', error.message];
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return ['invalid', 'no key in the JWKS matches the token\'s "kid" and "alg"'];
  }
  if (error instanceof errors.JOSEError) return ['invalid', `${error.message} (${error.code})`];
  // TypeErrors from key/alg mismatches the allow-list did not already rule out, and the like.
  return ['invalid', error instanceof Error ? error.message : String(error)];
}

interface Checked {
  readonly resolved: Resolved;
  readonly issuer: readonly string[] | undefined;
  readonly audience: readonly string[] | undefined;
  readonly clockToleranceSec: number;
  readonly maxTokenLength: number;
  readonly userId: readonly string[];
  readonly deviceId: readonly string[];
  readonly roles: readonly string[];
  readonly assignClaims: readonly string[] | 'all';
  /** Top-level claims `all` leaves out. */
  readonly notAssigned: ReadonlySet<string>;
}

function checkOptions(options: JwtOptions): Checked {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError('auth.jwt must be an object');
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_KEYS.has(name)) throw new ConfigError(`auth.jwt.${name} is not an option`);
  }
  const sources = (['secret', 'publicKey', 'jwksUrl'] as const).filter(
    (name) => options[name] !== undefined,
  );
  if (sources.length !== 1) {
    throw new ConfigError(
      `auth.jwt needs exactly one of secret, publicKey, jwksUrl (got ${sources.length === 0 ? 'none' : sources.join(', ')})`,
    );
  }
  if (options.jwks !== undefined && options.jwksUrl === undefined) {
    throw new ConfigError('auth.jwt.jwks applies only with auth.jwt.jwksUrl');
  }
  const algorithms =
    options.algorithms === undefined ? undefined : checkAlgorithms(options.algorithms);
  const resolved =
    options.secret !== undefined
      ? fromSecret(options.secret, algorithms)
      : options.publicKey !== undefined
        ? fromPublicKey(options.publicKey, algorithms)
        : fromJwks(options.jwksUrl, options.jwks, algorithms);

  const clockToleranceSec = options.clockToleranceSec ?? JWT_DEFAULTS.clockToleranceSec;
  if (
    typeof clockToleranceSec !== 'number' ||
    !Number.isFinite(clockToleranceSec) ||
    clockToleranceSec < 0
  ) {
    throw new ConfigError('auth.jwt.clockToleranceSec must be a number of seconds >= 0');
  }
  const maxTokenLength = options.maxTokenLength ?? JWT_DEFAULTS.maxTokenLength;
  if (
    typeof maxTokenLength !== 'number' ||
    !Number.isInteger(maxTokenLength) ||
    maxTokenLength < 1
  ) {
    throw new ConfigError('auth.jwt.maxTokenLength must be a positive integer (characters)');
  }
  const claims: unknown = options.claims ?? {};
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw new ConfigError('auth.jwt.claims must be an object');
  }
  for (const name of Object.keys(claims)) {
    if (!['userId', 'deviceId', 'roles'].includes(name)) {
      throw new ConfigError(`auth.jwt.claims.${name} is not an option (userId, deviceId, roles)`);
    }
  }
  const mapping = claims as JwtClaimMapping;
  const userId = claimPath('userId', mapping.userId ?? JWT_DEFAULTS.claims.userId);
  const deviceId = claimPath('deviceId', mapping.deviceId ?? JWT_DEFAULTS.claims.deviceId);
  const roles = claimPath('roles', mapping.roles ?? JWT_DEFAULTS.claims.roles);

  const assignClaims = options.assignClaims ?? JWT_DEFAULTS.assignClaims;
  if (
    assignClaims !== 'all' &&
    !(
      Array.isArray(assignClaims) &&
      assignClaims.every((name: unknown) => typeof name === 'string' && name !== '')
    )
  ) {
    throw new ConfigError('auth.jwt.assignClaims must be "all" or an array of claim names');
  }
  return {
    resolved,
    issuer: stringList('issuer', options.issuer),
    audience: stringList('audience', options.audience),
    clockToleranceSec,
    maxTokenLength,
    userId,
    deviceId,
    roles,
    assignClaims: assignClaims === 'all' ? 'all' : [...(assignClaims as readonly string[])],
    notAssigned: new Set([
      ...REGISTERED_CLAIMS,
      userId[0] as string,
      deviceId[0] as string,
      roles[0] as string,
    ]),
  };
}

function checkAlgorithms(value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError('auth.jwt.algorithms must be a non-empty array of algorithm names');
  }
  for (const alg of value as unknown[]) {
    if (typeof alg === 'string' && alg.toLowerCase() === 'none') {
      throw new ConfigError('auth.jwt.algorithms must not contain "none" (unsigned tokens)');
    }
    if (typeof alg !== 'string' || !(HMAC.has(alg) || ASYMMETRIC.has(alg))) {
      throw new ConfigError(
        `auth.jwt.algorithms: ${JSON.stringify(alg)} is not one of ${[...HMAC, ...ASYMMETRIC].join(', ')}`,
      );
    }
  }
  return [...new Set(value as string[])];
}

function fromSecret(secret: unknown, algorithms: readonly string[] | undefined): Resolved {
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

function fromPublicKey(pem: unknown, algorithms: readonly string[] | undefined): Resolved {
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

function fromJwks(
  url: unknown,
  jwks: unknown,
  algorithms: readonly string[] | undefined,
): Resolved {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    throw new ConfigError('auth.jwt.jwksUrl must be an http(s) URL');
  }
  if (typeof url !== 'string' || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw new ConfigError('auth.jwt.jwksUrl must be an http(s) URL');
  }
  const chosen = algorithms ?? JWT_DEFAULTS.jwksAlgorithms;
  const unfit = chosen.filter((alg) => !ASYMMETRIC.has(alg));
  if (unfit.length > 0) {
    throw new ConfigError(
      `auth.jwt.algorithms: ${unfit.join(', ')} cannot be used with a JWKS (asymmetric algorithms only)`,
    );
  }
  if (jwks !== undefined && (typeof jwks !== 'object' || jwks === null || Array.isArray(jwks))) {
    throw new ConfigError('auth.jwt.jwks must be an object');
  }
  const given = (jwks ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!Object.hasOwn(JWT_DEFAULTS.jwks, name)) {
      throw new ConfigError(`auth.jwt.jwks.${name} is not an option`);
    }
  }
  const ms = (name: keyof typeof JWT_DEFAULTS.jwks): number => {
    const value = given[name] ?? JWT_DEFAULTS.jwks[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new ConfigError(`auth.jwt.jwks.${name} must be an integer number of ms >= 0`);
    }
    return value;
  };
  const cacheMaxAgeMs = ms('cacheMaxAgeMs');
  const cooldownMs = ms('cooldownMs');
  const timeoutMs = ms('timeoutMs');
  const failureCooldownMs = ms('failureCooldownMs');
  const source = parsed.href;

  // Fetches go through here: a failed one holds off the next for `failureCooldownMs` (jose only
  // rate-limits refetches after a success), and every failure becomes JwksUnavailable.
  let failedAt: number | null = null;
  const fetchJwks: FetchImplementation = async (resource, init) => {
    if (failedAt !== null && Date.now() - failedAt < failureCooldownMs) {
      throw new JwksUnavailable(
        `the JWKS at ${source} failed less than ${failureCooldownMs} ms ago`,
      );
    }
    try {
      const response = await fetch(resource, init);
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new JwksUnavailable(`HTTP ${response.status} (redirects are not followed)`);
      }
      return response;
    } catch (error) {
      failedAt = Date.now();
      throw error;
    }
  };
  const remote = createRemoteJWKSet(parsed, {
    cacheMaxAge: cacheMaxAgeMs,
    cooldownDuration: cooldownMs,
    timeoutDuration: timeoutMs,
    [customFetch]: fetchJwks,
  });
  const key: JWTVerifyGetKey = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      // The token's business (its kid/alg match no key, or several): decided by the caller.
      if (
        error instanceof errors.JWKSNoMatchingKey ||
        error instanceof errors.JWKSMultipleMatchingKeys ||
        error instanceof JwksUnavailable
      ) {
        throw error;
      }
      // Fetch, timeout, HTTP status, an unparsable or malformed set, a matching key that does not
      // import: the key server's fault, not the client's.
      throw new JwksUnavailable(
        `the JWKS at ${source} could not be fetched: ${(error as Error).message}`,
        { cause: error },
      );
    }
  };
  return { key, algorithms: chosen };
}

function stringList(name: string, value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    !list.every((item: unknown) => typeof item === 'string' && item !== '')
  ) {
    throw new ConfigError(
      `auth.jwt.${name} must be a non-empty string or a non-empty array of them`,
    );
  }
  return list as string[];
}

function claimPath(name: string, value: unknown): readonly string[] {
  const path = typeof value === 'string' ? [value] : value;
  if (
    !Array.isArray(path) ||
    path.length === 0 ||
    !path.every((item: unknown) => typeof item === 'string' && item !== '')
  ) {
    throw new ConfigError(
      `auth.jwt.claims.${name} must be a claim name or a non-empty array of names (a path)`,
    );
  }
  return path as string[];
}

/** The value at a claim path, or undefined; only own properties of plain objects are followed. */
function claimAt(payload: JWTPayload, path: readonly string[]): unknown {
  let value: unknown = payload;
  for (const name of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    if (!Object.hasOwn(value, name)) return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}

function idString(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

/** The identity the claims give, or `invalid` when a mapped claim has the wrong shape. */
function identityOf(payload: JWTPayload, config: Checked): Identity | AuthFailure {
  const invalid = (message: string) => authFailure('invalid', `jwt: ${message}`);
  const label = (path: readonly string[]) => `"${path.join('.')}" claim`;
  const rawUser = claimAt(payload, config.userId);
  if (rawUser === undefined || rawUser === null) {
    return invalid(`the token has no ${label(config.userId)} (the user id)`);
  }
  const userId = idString(rawUser);
  if (userId === undefined) {
    return invalid(`the ${label(config.userId)} is not a non-empty string or a safe integer`);
  }
  const rawDevice = claimAt(payload, config.deviceId);
  let deviceId: string | null = null;
  if (rawDevice !== undefined && rawDevice !== null) {
    const device = idString(rawDevice);
    if (device === undefined) {
      return invalid(`the ${label(config.deviceId)} is not a non-empty string or a safe integer`);
    }
    deviceId = device;
  }
  const rawRoles = claimAt(payload, config.roles);
  let roles: string[] = [];
  if (typeof rawRoles === 'string') {
    roles = rawRoles.split(/\s+/).filter((role) => role !== '');
  } else if (Array.isArray(rawRoles) && rawRoles.every((role) => typeof role === 'string')) {
    roles = [...rawRoles];
  } else if (rawRoles !== undefined && rawRoles !== null) {
    return invalid(`the ${label(config.roles)} is not an array of strings or a string`);
  }
  const names =
    config.assignClaims === 'all'
      ? Object.keys(payload).filter((name) => !config.notAssigned.has(name))
      : config.assignClaims.filter((name) => Object.hasOwn(payload, name));
  // fromEntries defines own properties: a `__proto__` claim stays data, not a prototype.
  const assigns = Object.fromEntries(names.map((name) => [name, payload[name]]));
  return {
    userId,
    deviceId,
    roles,
    assigns,
    expiresAt: typeof payload.exp === 'number' ? Math.floor(payload.exp * 1000) : null,
  };
}
