/**
 * The `jwt` strategy's options checked once, at startup: a bad config fails with the setting's name
 * (`ConfigError`), and what passes is resolved into the key source and claim paths the strategy uses.
 */
import { ConfigError } from '../config/errors.js';
import { fromJwks } from './jwt-jwks.js';
import { ASYMMETRIC, HMAC, fromPublicKey, fromSecret, type Resolved } from './jwt-keys.js';
import { JWT_DEFAULTS, type JwtClaimMapping, type JwtOptions } from './jwt-options.js';

/** Claims `assignClaims: 'all'` leaves out: they describe the token, not the user. */
const REGISTERED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti']);
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

/** The options after checking, with the defaults filled in. */
export interface Checked {
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

/** Checks `auth.jwt` and resolves its key source; throws `ConfigError` naming the bad setting. */
export function checkOptions(options: JwtOptions): Checked {
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
