/**
 * The `jwt` strategy (config `auth.jwt`): a JSON Web Token, verified with `jose` against a shared
 * secret (HS*), a PEM public key (RS*, PS*, ES*, EdDSA) or a JWKS fetched over HTTP, becomes an
 * Identity. Options are checked once (jwt-check-options.ts), so a bad config fails at startup with
 * the setting's name; `authenticate` never throws. Key sources: jwt-keys.ts, jwt-jwks.ts; claims
 * to identity: jwt-claims.ts. protocol/auth.md ("jwt") is the user-facing description.
 */
import { errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { checkOptions } from './jwt-check-options.js';
import { identityOf } from './jwt-claims.js';
import { JwksUnavailable } from './jwt-jwks.js';
import type { JwtOptions } from './jwt-options.js';
import {
  authFailure,
  type AuthFailure,
  type AuthFailureReason,
  type AuthRequest,
  type AuthStrategy,
  type Identity,
} from './types.js';

export {
  JWT_DEFAULTS,
  JWT_MIN_SECRET_BYTES,
  type JwtClaimMapping,
  type JwtClaimPath,
  type JwtJwksOptions,
  type JwtOptions,
} from './jwt-options.js';

/** What a compact JWS looks like: three base64url parts. Anything else is `malformed` before jose sees it. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

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
