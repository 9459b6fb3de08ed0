/** Step 5, arguments: the config's compiled argument check, converting the client's values. */
import { argChecker } from '../args/compile.js';
import { ArgumentError } from '../args/errors.js';
import type { GenApiRequest, ResolvedFunConfig } from '../types.js';
import type { PipelineContext } from './context.js';

/** The checked and converted arguments, or the ArgumentError that says what is wrong. */
export function checkArguments(
  ctx: PipelineContext,
  request: GenApiRequest,
  config: ResolvedFunConfig,
): Record<string, unknown> | ArgumentError {
  try {
    return argChecker(config.args)(request.args, request.request_type, ctx.limits);
  } catch (err) {
    if (!(err instanceof ArgumentError)) throw err;
    return err;
  }
}
