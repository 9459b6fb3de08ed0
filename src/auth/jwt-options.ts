/**
 * Options of the `jwt` strategy (`auth.jwt`) and their defaults, in one place; checked by
 * jwt-check-options.ts. protocol/auth.md ("jwt") is the user-facing description.
 */

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
