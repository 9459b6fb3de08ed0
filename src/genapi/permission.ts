/**
 * The `check_permission` modes of PhoenixGenApi (spec §4, items 2–6) as a pure predicate.
 *
 * Not here: the worker permission callback (§4 item 1, `permission_callback: true` → ask the worker,
 * fail-closed) is asynchronous and lives in the executor, which calls this only when there is no
 * callback.
 *
 * Identity comes from the server side only: `request.user_id` and `request.user_roles` are filled by
 * the executor from the socket's authenticated assigns, never from the client payload. (§11 item 14:
 * PhoenixGenApi takes the roles from the client payload; this port does not.) The functions below
 * trust whatever is in those two fields, so that invariant is what makes `arg` and `role` meaningful.
 */
import type { GenApiRequest, PermissionMode } from './types.js';

/**
 * True when the request may run under `mode`.
 *
 * - `none` (`check_permission: false`): always allowed.
 * - `any_authenticated`: `user_id` is a non-empty string.
 * - `arg {arg}`: `user_id` is a non-empty string and `args[arg] === user_id` (strict: the number 123
 *   does not match "123"; a missing or null argument denies). With `argsAsMap` (`arg_orders: "map"`),
 *   when the top-level value is null/absent, the values of `args` that are plain objects are searched,
 *   ONE level deep, in property order; the first object holding a non-null value for the key decides,
 *   even if that value mismatches. A non-null top-level value always decides (no nested search).
 * - `role {roles}`: `user_roles` is a non-empty array sharing at least one exact string with `roles`
 *   (an empty allowed list denies). `user_id` is not consulted (as in PhoenixGenApi).
 * - anything else (a malformed mode at runtime): denied.
 *
 * `args` is passed separately from `request.args` so the caller decides which view is checked
 * (PhoenixGenApi checks the raw request args, before conversion).
 */
export function checkPermission(
  mode: PermissionMode,
  request: GenApiRequest,
  args: Record<string, unknown>,
  argsAsMap: boolean,
): boolean {
  switch (mode.kind) {
    case 'none':
      return true;
    case 'any_authenticated':
      return isNonEmptyString(request.user_id);
    case 'arg': {
      const userId = request.user_id;
      if (!isNonEmptyString(userId) || typeof mode.arg !== 'string') return false;
      let value = ownValue(args, mode.arg);
      if (value == null && argsAsMap) value = findOneLevelDeep(args, mode.arg);
      return value === userId;
    }
    case 'role': {
      const userRoles: unknown = request.user_roles;
      const allowed: unknown = mode.roles;
      if (!Array.isArray(userRoles) || userRoles.length === 0) return false;
      if (!Array.isArray(allowed) || allowed.length === 0) return false;
      const allowedSet = new Set(allowed.filter((r): r is string => typeof r === 'string'));
      return userRoles.some((r) => typeof r === 'string' && allowedSet.has(r));
    }
    default:
      return false;
  }
}

/** A short description of `mode` for logs: `none`, `any_authenticated`, `arg:user_id`, `role:admin,ops`. */
export function permissionLabel(mode: PermissionMode): string {
  switch (mode.kind) {
    case 'none':
      return 'none';
    case 'any_authenticated':
      return 'any_authenticated';
    case 'arg':
      return `arg:${String(mode.arg)}`;
    case 'role':
      return `role:${Array.isArray(mode.roles) ? mode.roles.join(',') : ''}`;
    default:
      return `invalid:${String((mode as { kind?: unknown }).kind)}`;
  }
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/** `obj[key]` for an own property only (so `"constructor"`, `"toString"` … never hit the prototype). */
function ownValue(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null || !Object.hasOwn(obj, key)) return undefined;
  return (obj as Record<string, unknown>)[key];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * PhoenixGenApi's `find_in_map_args`: `Enum.find_value` over the map values, taking the first map
 * value whose entry for `key` is non-nil. Only one level deep.
 */
function findOneLevelDeep(args: Record<string, unknown>, key: string): unknown {
  if (typeof args !== 'object' || args === null) return undefined;
  for (const value of Object.values(args)) {
    if (!isPlainObject(value)) continue;
    const nested = ownValue(value, key);
    if (nested != null) return nested;
  }
  return undefined;
}
