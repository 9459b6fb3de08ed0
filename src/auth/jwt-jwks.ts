/**
 * The JWKS key source of the `jwt` strategy (`auth.jwt.jwksUrl`): keys fetched over HTTP and cached
 * by jose, with a hold-off after a failed fetch; the key server's failures become JwksUnavailable
 * (the connect fails `unavailable`, not `invalid`).
 */
import {
  createRemoteJWKSet,
  customFetch,
  errors,
  type FetchImplementation,
  type JWTVerifyGetKey,
} from 'jose';
import { ConfigError } from '../config/errors.js';
import { GatewayError } from '../errors.js';
import { ASYMMETRIC, type Resolved } from './jwt-keys.js';
import { JWT_DEFAULTS } from './jwt-options.js';

/** The JWKS could not be fetched or used: the connect fails `unavailable`, not `invalid`. */
export class JwksUnavailable extends GatewayError {
  override readonly name = 'JwksUnavailable';
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_JWKS_UNAVAILABLE', message, options);
  }
}

/** The `jwksUrl` and `jwks` options as a key lookup over a cached remote key set. */
export function fromJwks(
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
