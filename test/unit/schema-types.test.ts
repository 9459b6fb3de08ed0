/**
 * The hand-written config types and the types generated from protocol/schemas
 * (src/schema/generated/types.ts) describe the same values: a value of either is a value of the
 * other. A schema change that the TypeScript types do not follow (or the reverse) fails to compile.
 */
import { describe, expect, it } from 'vitest';
import type { FunConfig, ArgSpec } from '../../src/nats/fun-config.js';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import type { GatewayConfig } from '../../src/config/file.js';
import type {
  FunConfig as FunConfigShape,
  FunConfigArgSpec,
  GatewayConfig as GatewayConfigShape,
  RateLimitPolicy,
} from '../../src/schema/generated/types.js';

/** The generated types have readonly arrays (they type what is checked): compare mutable forms. */
type Mutable<T> = T extends object ? { -readonly [K in keyof T]: Mutable<T[K]> } : T;

/** true when every value of A is a value of B (not distributed over unions). */
type Extends<A, B> = [A] extends [B] ? true : false;
/** Compiles only for `true`. */
const holds = <T extends true>(): T => true as T;

describe('generated schema types match the hand-written ones', () => {
  it('FunConfig', () => {
    expect(holds<Extends<FunConfig, FunConfigShape>>()).toBe(true);
    expect(holds<Extends<Mutable<FunConfigShape>, FunConfig>>()).toBe(true);
  });

  it('ArgSpec', () => {
    expect(holds<Extends<ArgSpec, FunConfigArgSpec>>()).toBe(true);
    expect(holds<Extends<Mutable<FunConfigArgSpec>, ArgSpec>>()).toBe(true);
  });

  it('PolicyConfig (the schema also allows null for a default)', () => {
    expect(holds<Extends<PolicyConfig, RateLimitPolicy>>()).toBe(true);
  });

  it('GatewayConfig: the schema knows every top-level setting', () => {
    expect(holds<Extends<keyof GatewayConfig, keyof GatewayConfigShape>>()).toBe(true);
    expect(holds<Extends<keyof GatewayConfigShape, keyof GatewayConfig>>()).toBe(true);
  });
});
