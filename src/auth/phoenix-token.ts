/**
 * The `phoenixToken` strategy: accepts the tokens a Phoenix app makes with
 * `Phoenix.Token.sign(MyAppWeb.Endpoint, "user socket", user_id)` and checks them exactly as
 * `Phoenix.Token.verify` does (plug_crypto's Plug.Crypto.verify + MessageVerifier):
 *
 * - key = PBKDF2-HMAC-SHA256(secret_key_base, salt, 1000 iterations, 32 bytes), derived once;
 * - token = `protected.payload.signature`, where `protected` is literally `SFMyNTY`, `SFMzODQ` or
 *   `SFM1MTI` (base64url of HS256/HS384/HS512) and the signature is the HMAC of the text
 *   `protected.payload` as it stands in the token;
 * - payload = term_to_binary of `{data, signed_at_ms, max_age_s}`, or the legacy `{data,
 *   signed_at_ms}` and `%{data: _, signed: _}` (both with max_age 86400);
 * - the verify-time max age, when set, replaces the token's own; max age <= 0 is expired,
 *   signed_at in the future invalid, signed_at + max_age < now expired.
 */
import { phoenixTokenIdentity } from './phoenix-token-identity.js';
import { checkOptions, type PhoenixTokenOptions } from './phoenix-token-options.js';
import { derivePhoenixTokenKey, verifyPhoenixToken } from './phoenix-token-verify.js';
import {
  authFailure,
  type AuthFailure,
  type AuthRequest,
  type AuthStrategy,
  type Identity,
} from './types.js';

export {
  PHOENIX_TOKEN_DEFAULTS,
  type PhoenixTokenKeys,
  type PhoenixTokenOptions,
} from './phoenix-token-options.js';
export { phoenixTokenIdentity, type PhoenixTokenIdentity } from './phoenix-token-identity.js';
export {
  derivePhoenixTokenKey,
  verifyPhoenixToken,
  type VerifiedPhoenixToken,
} from './phoenix-token-verify.js';

/**
 * The phoenixToken strategy. Checks the options (ConfigError naming the setting) and derives the
 * key once, here: PBKDF2 is slow on purpose. `clock` gives wall-clock epoch ms (tests pass a
 * fixed one).
 */
export function createPhoenixTokenStrategy(
  options: PhoenixTokenOptions,
  clock: () => number = Date.now,
): AuthStrategy {
  const checked = checkOptions(options);
  const key = derivePhoenixTokenKey(checked.secretKeyBase, checked.salt);
  const authenticate = (request: AuthRequest): Identity | AuthFailure => {
    const verified = verifyPhoenixToken(
      key,
      request.token,
      checked.maxAge,
      clock(),
      checked.maxTokenLength,
    );
    if ('failed' in verified) return verified;
    const identity = phoenixTokenIdentity(verified.data, checked.keys);
    if ('failed' in identity) return identity;
    return { ...identity, expiresAt: verified.expiresAt };
  };
  return {
    name: 'phoenixToken',
    authenticate(request) {
      try {
        return Promise.resolve(authenticate(request));
      } catch (error) {
        // Not expected (every path returns a failure); the contract is never to throw.
        return Promise.resolve(authFailure('invalid', `phoenixToken: ${String(error)}`));
      }
    },
  };
}
