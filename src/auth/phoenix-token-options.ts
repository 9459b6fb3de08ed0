/**
 * Options of the `phoenixToken` strategy (`auth.phoenixToken`), their defaults in one place, and
 * their check at startup (a ConfigError names the setting).
 */
import { ConfigError } from '../config/errors.js';

/** Which entries of a map token's data give the identity (atom or string keys alike). */
export interface PhoenixTokenKeys {
  /** The user id entry (a string or an integer). Default `user_id`. */
  readonly userId?: string;
  /** The device id entry (a string or an integer; absent or nil: none). Default `device_id`. */
  readonly deviceId?: string;
  /** The roles entry (a list of strings or atoms; absent or nil: none). Default `roles`. */
  readonly roles?: string;
}

/** The config file's `auth.phoenixToken` section. */
export interface PhoenixTokenOptions {
  /** The Phoenix endpoint's `secret_key_base` (the same one the app signs with). Required. */
  readonly secretKeyBase: string;
  /** The salt the app signs with, e.g. `"user socket"`. Required. */
  readonly salt: string;
  /**
   * Seconds a token is accepted after it was signed, like `Phoenix.Token.verify(..., max_age:)`:
   * it replaces the max age signed into the token. `null`: use the token's own max age (what
   * verify does without `max_age`; Phoenix.Token.sign embeds 86400 unless told otherwise).
   * Default 86400.
   */
  readonly maxAge?: number | null;
  /** Which map entries give the identity when the token's data is a map. */
  readonly keys?: PhoenixTokenKeys;
  /** Longer tokens are refused before any work (characters). Default 8192. */
  readonly maxTokenLength?: number;
}

/** Defaults of PhoenixTokenOptions, and the fixed key-derivation parameters (plug_crypto's). */
export const PHOENIX_TOKEN_DEFAULTS = {
  /** One day, Phoenix.Token's default. */
  maxAge: 86400,
  keys: { userId: 'user_id', deviceId: 'device_id', roles: 'roles' },
  /** A socket token for a user id is about 100 characters; 8 KiB leaves room for map data. */
  maxTokenLength: 8192,
  /** Plug.Crypto.KeyGenerator as Phoenix.Token calls it (not configurable there either). */
  keyIterations: 1000,
  keyLength: 32,
  keyDigest: 'sha256',
} as const;

const OPTION_NAMES = new Set(['secretKeyBase', 'salt', 'maxAge', 'keys', 'maxTokenLength']);
const KEY_NAMES = new Set(['userId', 'deviceId', 'roles']);

/** The options after checking, with the defaults filled in. */
export interface CheckedOptions {
  readonly secretKeyBase: string;
  readonly salt: string;
  readonly maxAge: number | null;
  readonly keys: Required<PhoenixTokenKeys>;
  readonly maxTokenLength: number;
}

const nonEmptyString = (value: unknown): value is string =>
  typeof value === 'string' && value !== '';

/** Checks `auth.phoenixToken` (JSON, so read as unknown); a ConfigError names the bad setting. */
export function checkOptions(options: PhoenixTokenOptions): CheckedOptions {
  const at = 'auth.phoenixToken';
  // Options come from a JSON file: check them as unknown, whatever their declared type says.
  const raw: unknown = options;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${at} must be an object`);
  }
  const given = raw as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!OPTION_NAMES.has(name)) throw new ConfigError(`${at} has no setting "${name}"`);
  }
  if (!nonEmptyString(given.secretKeyBase)) {
    throw new ConfigError(
      `${at}.secretKeyBase must be a non-empty string (the endpoint's secret_key_base)`,
    );
  }
  if (!nonEmptyString(given.salt)) {
    throw new ConfigError(`${at}.salt must be a non-empty string (the salt the app signs with)`);
  }
  const maxAge = given.maxAge === undefined ? PHOENIX_TOKEN_DEFAULTS.maxAge : given.maxAge;
  if (maxAge !== null && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0)) {
    throw new ConfigError(
      `${at}.maxAge must be a positive number of seconds, or null for the token's own`,
    );
  }
  const maxTokenLength = given.maxTokenLength ?? PHOENIX_TOKEN_DEFAULTS.maxTokenLength;
  if (
    typeof maxTokenLength !== 'number' ||
    !Number.isInteger(maxTokenLength) ||
    maxTokenLength < 1
  ) {
    throw new ConfigError(`${at}.maxTokenLength must be a positive integer`);
  }
  const keysRaw = given.keys ?? {};
  if (typeof keysRaw !== 'object' || keysRaw === null || Array.isArray(keysRaw)) {
    throw new ConfigError(`${at}.keys must be an object`);
  }
  const keysGiven = keysRaw as Record<string, unknown>;
  const keys: Record<string, string> = { ...PHOENIX_TOKEN_DEFAULTS.keys };
  for (const [name, value] of Object.entries(keysGiven)) {
    if (!KEY_NAMES.has(name)) throw new ConfigError(`${at}.keys has no setting "${name}"`);
    if (value === undefined) continue;
    if (!nonEmptyString(value))
      throw new ConfigError(`${at}.keys.${name} must be a non-empty string`);
    keys[name] = value;
  }
  return {
    secretKeyBase: given.secretKeyBase,
    salt: given.salt,
    maxAge,
    keys: keys as Required<PhoenixTokenKeys>,
    maxTokenLength,
  };
}
