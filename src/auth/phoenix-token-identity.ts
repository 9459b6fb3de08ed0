/** The identity a verified Phoenix token's data gives (a user id, or a map with `keys`). */
import { etfBinaryText, etfToPlain, type EtfTerm, type PlainValue } from './etf.js';
import { PHOENIX_TOKEN_DEFAULTS, type PhoenixTokenKeys } from './phoenix-token-options.js';
import { authFailure, type AuthFailure, type Identity } from './types.js';

/** The identity part of a verified token's data (expiresAt comes from the token's age). */
export type PhoenixTokenIdentity = Omit<Identity, 'expiresAt'>;

/**
 * The identity a token's data gives: a string (non-empty, UTF-8) or an integer is the user id; a
 * map gives user id, device id and roles by `keys` (atom or string keys; the same name as both
 * is ambiguous, so invalid) and its other entries become assigns (etfToPlain); anything else is
 * invalid.
 */
export function phoenixTokenIdentity(
  data: EtfTerm,
  keys: Required<PhoenixTokenKeys> = PHOENIX_TOKEN_DEFAULTS.keys,
): PhoenixTokenIdentity | AuthFailure {
  if (data.type !== 'map') {
    const userId = idString(data);
    if (userId === null)
      return authFailure('invalid', `token data is ${describe(data)}, not a user id or map`);
    return { userId, deviceId: null, roles: [], assigns: {} };
  }
  const used = new Set<number>();
  const entry = (name: string): EtfTerm | undefined | AuthFailure => {
    let found: EtfTerm | undefined;
    for (const [i, [key, value]] of data.entries.entries()) {
      const keyName =
        key.type === 'atom' ? key.name : key.type === 'binary' ? etfBinaryText(key.bytes) : null;
      if (keyName !== name) continue;
      if (found !== undefined)
        return authFailure('invalid', `token data has "${name}" twice (atom and string)`);
      found = value;
      used.add(i);
    }
    return found;
  };
  const isNil = (term: EtfTerm | undefined): boolean =>
    term === undefined || (term.type === 'atom' && term.name === 'nil');

  const userTerm = entry(keys.userId);
  if (isFailure(userTerm)) return userTerm;
  const userId = userTerm === undefined ? null : idString(userTerm);
  if (userId === null) return authFailure('invalid', `token data has no usable "${keys.userId}"`);

  const deviceTerm = entry(keys.deviceId);
  if (isFailure(deviceTerm)) return deviceTerm;
  const deviceId = isNil(deviceTerm) ? null : idString(deviceTerm as EtfTerm);
  if (!isNil(deviceTerm) && deviceId === null) {
    return authFailure('invalid', `token data "${keys.deviceId}" is not a string or integer`);
  }

  const rolesTerm = entry(keys.roles);
  if (isFailure(rolesTerm)) return rolesTerm;
  const roles: string[] = [];
  if (!isNil(rolesTerm)) {
    if (rolesTerm?.type !== 'list')
      return authFailure('invalid', `token data "${keys.roles}" is not a list`);
    for (const item of rolesTerm.items) {
      const role = roleString(item);
      if (role === null)
        return authFailure('invalid', `token data "${keys.roles}" holds a non-string`);
      roles.push(role);
    }
  }

  const rest = data.entries.filter((_, i) => !used.has(i));
  const assigns = etfToPlain({ type: 'map', entries: rest }) as Record<string, PlainValue>;
  return { userId, deviceId, roles, assigns };
}

function isFailure(value: EtfTerm | undefined | AuthFailure): value is AuthFailure {
  return value !== undefined && 'failed' in value;
}

/** A user or device id: a non-empty UTF-8 binary, or an integer in decimal. */
function idString(term: EtfTerm): string | null {
  if (term.type === 'integer') return term.value.toString();
  if (term.type === 'binary') {
    const text = etfBinaryText(term.bytes);
    return text === null || text === '' ? null : text;
  }
  return null;
}

/** A role: a non-empty UTF-8 binary, or an atom other than nil/true/false. */
function roleString(term: EtfTerm): string | null {
  if (term.type === 'atom') return ['nil', 'true', 'false'].includes(term.name) ? null : term.name;
  if (term.type !== 'binary') return null;
  const text = etfBinaryText(term.bytes);
  return text === '' ? null : text;
}

/** A term's kind for a log line (never its content: that may be personal data). */
function describe(term: EtfTerm): string {
  return term.type === 'binary' ? 'an empty or non-UTF-8 binary' : `of type ${term.type}`;
}
