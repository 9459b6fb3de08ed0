/**
 * convertArgs: argument validation + conversion (spec §3) as one call, for callers that hold a
 * rule list rather than a checker. It runs the rule list's compiled checker (compile.ts), compiled
 * on first use and cached, so repeated calls with the same rules compile once.
 */
import type { ArgRule } from '../types.js';
import { argChecker } from './compile.js';
import { DEFAULT_ARG_LIMITS, type ArgLimits } from './limits.js';

export { DEFAULT_ARG_LIMITS, type ArgLimits } from './limits.js';

/**
 * Checks `args` against `rules` and returns the converted arguments; throws an ArgumentError with
 * PhoenixGenApi's text on the first failure.
 * `rules === null` (no `arg_types` declared): `args` is returned as is, unchecked.
 */
export function convertArgs(
  rules: readonly ArgRule[] | null,
  args: Record<string, unknown>,
  requestType: string,
  limits: ArgLimits = DEFAULT_ARG_LIMITS,
): Record<string, unknown> {
  return argChecker(rules)(args, requestType, limits);
}
