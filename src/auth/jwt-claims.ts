/**
 * A verified token's claims mapped to an Identity (`auth.jwt.claims`, `auth.jwt.assignClaims`).
 */
import type { JWTPayload } from 'jose';
import type { Checked } from './jwt-check-options.js';
import { authFailure, type AuthFailure, type Identity } from './types.js';

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
export function identityOf(payload: JWTPayload, config: Checked): Identity | AuthFailure {
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
