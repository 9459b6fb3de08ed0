/**
 * The validators compiled from protocol/schemas (scripts/gen-schemas.mjs writes
 * generated/validators.ts and generated/types.ts from the same JSON Schemas), with their types.
 * They check shapes only; each caller turns the first failures into its own error wording and
 * keeps the rules JSON Schema cannot say (one field against another) in code.
 */
import * as generated from './generated/validators.js';
import type {
  FunConfig as FunConfigShape,
  FunConfigArgSpec,
  GatewayConfig as GatewayConfigShape,
  RateLimitPolicy as RateLimitPolicyShape,
} from './generated/types.js';

export type { FunConfigShape, FunConfigArgSpec, GatewayConfigShape, RateLimitPolicyShape };

/** One failure as Ajv reports it: where (`instancePath`), which rule (`keyword`) and its `params`. */
export interface SchemaError {
  /** JSON Pointer to the failing value ("" for the root, "/scope", "/arg_types/a"). */
  readonly instancePath: string;
  /** The failing rule in the schema ("#/properties/scope/oneOf/1/additionalProperties"). */
  readonly schemaPath: string;
  /** The rule's keyword: type, enum, required, additionalProperties, propertyNames, … */
  readonly keyword: string;
  /** The rule's details: `missingProperty`, `additionalProperty`, `propertyName`, … */
  readonly params: Readonly<Record<string, unknown>>;
}

/** A compiled schema: true when `value` conforms; the failures (all of them) in `errors` else. */
export interface SchemaValidator<T> {
  (value: unknown): value is T;
  /** The last call's failures, null after a success. */
  readonly errors?: readonly SchemaError[] | null;
}

/** A worker's FunConfig (fun-config.schema.json). */
export const validateFunConfigShape =
  generated.validateFunConfigShape as unknown as SchemaValidator<FunConfigShape>;
/** One argument spec of arg_types (fun-config.schema.json#/$defs/argSpec). */
export const validateArgSpec =
  generated.validateArgSpec as unknown as SchemaValidator<FunConfigArgSpec>;
/** A rate-limit policy (rate-limit-policy.schema.json). */
export const validatePolicyShape =
  generated.validatePolicyShape as unknown as SchemaValidator<RateLimitPolicyShape>;
/** The gateway config file (gateway-config.schema.json). */
export const validateGatewayConfigShape =
  generated.validateGatewayConfigShape as unknown as SchemaValidator<GatewayConfigShape>;

/**
 * The top-level field a failure is about: the first segment of its path, or the missing or
 * unknown property a root-level failure names; "" for the root itself.
 */
export function fieldOf(error: SchemaError): string {
  if (error.instancePath !== '') return decodePointer(error.instancePath.split('/')[1] ?? '');
  const named = error.params.missingProperty;
  return typeof named === 'string' ? named : '';
}

/** `~1` → `/`, `~0` → `~` (JSON Pointer escapes). */
export function decodePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}
