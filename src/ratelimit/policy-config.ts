/**
 * Checking a rate-limit policy as configured (config file, admin API): the shape by the validator
 * compiled from protocol/schemas/rate-limit-policy.schema.json, the wording of the first failure
 * here, and the two rules a schema cannot say (a cost that fits, connect policies keyed by ip).
 */
import { GatewayError } from '../errors.js';
import { fieldOf, validatePolicyShape, type SchemaError } from '../schema/validate.js';
import { ALGORITHMS, MODES, type PolicyConfig } from './types.js';

/** An invalid rate-limit policy or `rateLimits` option; the message says which field and why. */
export class PolicyError extends GatewayError {
  override readonly name = 'PolicyError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_POLICY', message, options);
  }
}

/** The defaults of the optional `PolicyConfig` fields (protocol/ratelimit.md §1). */
export const POLICY_DEFAULTS = {
  scope: 'global',
  algorithm: 'sliding_log',
  cost: 1,
  mode: 'local',
  fallback: 'local',
  shadow: false,
} as const;

/** Dot-separated words: safe in logs, metrics, NATS subjects and KV keys (the schema's `id` pattern). */
const ID = /^(?=.{1,64}$)[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** "" stands for the unknown options of the policy itself. The first failing field is reported. */
const FIELD_ORDER = [
  'id',
  '',
  'algorithm',
  'limit',
  'windowMs',
  'burst',
  'cost',
  'mode',
  'fallback',
  'scope',
  'key',
];
const rank = (field: string): number => FIELD_ORDER.indexOf(field);
const MODE_RANK = rank('mode');

/** The unknown option an object alternative of `field` reports when that is its only failure. */
function unknownOption(errors: readonly SchemaError[], field: string): string | null {
  const branch = errors.filter((error) =>
    error.schemaPath.startsWith(`#/properties/${field}/oneOf/1/`),
  );
  const first = branch[0];
  if (first === undefined || !branch.every((error) => error.keyword === 'additionalProperties'))
    return null;
  return String(first.params.additionalProperty);
}

function message(
  field: string,
  errors: readonly SchemaError[],
  config: Record<string, unknown>,
): string {
  const id = config.id as string;
  const value = config[field];
  switch (field) {
    case 'id':
      return `policy id must match ${ID}, got ${JSON.stringify(value)}`;
    case '': {
      const key = errors.find((error) => error.keyword === 'additionalProperties');
      return `policy ${id}: unknown option "${String(key?.params.additionalProperty)}"`;
    }
    case 'algorithm':
      return `policy ${id}: algorithm must be one of ${ALGORITHMS.join(', ')}`;
    case 'mode':
      return `policy ${id}: mode must be one of ${MODES.join(', ')}`;
    case 'fallback':
      return `policy ${id}: fallback must be local, open or closed`;
    case 'scope': {
      const unknown = unknownOption(errors, 'scope');
      return unknown === null
        ? `policy ${id}: scope must be "global", "connect" or {service, requestType?}`
        : `policy ${id}: scope: unknown option "${unknown}"`;
    }
    case 'key': {
      const unknown = unknownOption(errors, 'key');
      return unknown === null
        ? `policy ${id}: key must be user_id, device_id, ip, socket_id or {arg: name}`
        : `policy ${id}: key: unknown option "${unknown}"`;
    }
    default:
      // limit, windowMs, burst, cost
      return `policy ${id}: ${field} must be a positive integer, got ${JSON.stringify(value)}`;
  }
}

/** The rule a schema cannot say: a request must be able to fit in the policy's capacity. */
function costFitError(config: PolicyConfig): string | null {
  const algorithm = config.algorithm ?? POLICY_DEFAULTS.algorithm;
  const cost = config.cost ?? POLICY_DEFAULTS.cost;
  const gcra = algorithm === 'gcra';
  if (cost <= (gcra ? (config.burst ?? config.limit) : config.limit)) return null;
  return `policy ${config.id}: cost ${cost} can never fit (it exceeds the ${gcra ? 'burst' : 'limit'})`;
}

/** The first failing field (FIELD_ORDER) and its failures; null when only `shadow` failed. */
function firstFailure(
  errors: readonly SchemaError[],
): { field: string; errors: SchemaError[] } | null {
  const byField = new Map<string, SchemaError[]>();
  for (const error of errors) {
    // `shadow` is read as `=== true`: any other value has always meant false, so it is no error.
    if (error.instancePath.startsWith('/shadow')) continue;
    const field =
      error.keyword === 'additionalProperties' && error.instancePath === '' ? '' : fieldOf(error);
    byField.set(field, [...(byField.get(field) ?? []), error]);
  }
  const field = [...byField.keys()].sort((a, b) => rank(a) - rank(b))[0];
  return field === undefined ? null : { field, errors: byField.get(field) ?? [] };
}

/** Throws a PolicyError naming the first invalid field of `config`, in FIELD_ORDER. */
export function checkPolicyConfig(config: unknown): asserts config is PolicyConfig {
  let failure: ReturnType<typeof firstFailure> = null;
  if (!validatePolicyShape(config)) {
    const errors = validatePolicyShape.errors ?? [];
    if (errors.some((error) => error.instancePath === '' && error.keyword === 'type'))
      throw new PolicyError('a policy must be an object');
    failure = firstFailure(errors);
  }
  const fields = config as PolicyConfig;
  // The cost check reads algorithm..cost and runs before mode.
  if (failure === null || rank(failure.field) >= MODE_RANK) {
    const unfit = costFitError(fields);
    if (unfit !== null) throw new PolicyError(unfit);
  }
  if (failure !== null)
    throw new PolicyError(
      message(failure.field, failure.errors, config as Record<string, unknown>),
    );
  checkConnectKey(fields);
}

/** The other rule a schema cannot say: before connect, the IP is all that is known. */
function checkConnectKey(config: PolicyConfig): void {
  if (config.scope === 'connect' && config.key !== 'ip')
    throw new PolicyError(
      `policy ${config.id}: connect policies are keyed by ip (nothing else is known before connect)`,
    );
}
