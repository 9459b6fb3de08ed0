/** Requests, functions and policies shared by the rate-limit benchmarks. */
import { pino } from 'pino';
import type { GenApiRequest, ResolvedFunConfig } from '../../../src/genapi/types.js';
import type { RateContext } from '../../../src/ratelimit/policy.js';
import type { AlgorithmName, Mode, PolicyConfig } from '../../../src/ratelimit/types.js';

export const SERVICE = 'bench';
export const silentLogger = pino({ level: 'silent' });
export const CONTEXT: RateContext = { ip: '203.0.113.7', socketId: 'socket-1' };

/** What the executor passes as `config` (the limiter reads service and requestType only). */
export function funConfig(requestType: string): ResolvedFunConfig {
  return { service: SERVICE, requestType } as ResolvedFunConfig;
}

/** `count` requests of distinct users u0 … u<count-1>, built once (the executor builds one per call). */
export function requests(count: number, requestType: string, prefix = 'u'): GenApiRequest[] {
  return Array.from({ length: count }, (_, i) => ({
    request_id: `r${i}`,
    service: SERVICE,
    request_type: requestType,
    version: null,
    args: { message: 'hello' },
    user_id: `${prefix}${i}`,
    device_id: null,
    user_roles: null,
  }));
}

export function policy(
  id: string,
  requestType: string,
  algorithm: AlgorithmName,
  limit: number,
  windowMs: number,
  mode: Mode = 'local',
): PolicyConfig {
  return {
    id,
    scope: { service: SERVICE, requestType },
    key: 'user_id',
    algorithm,
    limit,
    windowMs,
    mode,
  };
}
