/**
 * protocol/ratelimit.md's schemas and vectors stay true: the vectors conform to the schemas, and
 * the code produces exactly what the vectors show (denied push, socket reply shape, headers, hit
 * batches, KV names), and accepts or refuses policies as the schema does.
 */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { errorResponse } from '../../src/genapi/response.js';
import { rateLimitHeaders, type LimitState } from '../../src/ratelimit/headers.js';
import { RateLimiter } from '../../src/ratelimit/limiter.js';
import { Policy, PolicyError } from '../../src/ratelimit/policy.js';
import {
  decodeHeartbeat,
  decodePolicyChange,
  decodePolicyState,
  decodePolicySyncRequest,
  decodeReplayed,
  decodeSyncRequest,
} from '../../src/ratelimit/cluster/messages.js';
import { SIGNATURE_HEADER, Signer } from '../../src/ratelimit/cluster/signing.js';
import {
  bucketName,
  bucketTtlSeconds,
  defaultBucketPrefix,
  kvKey,
} from '../../src/ratelimit/cluster/strict.js';
import { createAlgorithm } from '../../src/ratelimit/algorithms/index.js';
import { DEFAULT_PREFIX } from '../../src/nats/subjects.js';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import type { GenApiRequest, ResolvedFunConfig } from '../../src/genapi/types.js';
import { conforms, loadProtocol } from '../support/protocol.js';

interface Vectors {
  policy: PolicyConfig;
  denied_push: {
    policy: PolicyConfig;
    hits_at_ms: number[];
    sixth_at_ms: number;
    client_push: Record<string, unknown>;
  };
  socket_message_denied: { reply_payload: { status: string; response: Record<string, unknown> } };
  connect_denied: { state: LimitState; headers: Record<string, string> };
  hit_batch: unknown;
  replay_done: unknown;
  heartbeat: unknown;
  policy_change: unknown;
  policy_sync_request: unknown;
  policy_state: unknown;
  policy_signature: {
    secret: string;
    subject: string;
    payload: string;
    header: string;
    value: string;
  };
  request_signature: {
    secret: string;
    subject: string;
    reply: string;
    payload: string;
    value: string;
  };
  kv: {
    bucket_for_window_ms_10000_sliding_log: string;
    key_for_policy_demo_limited_user_alice: string;
    value_sliding_log: number[];
    value_gcra: number;
  };
}
const vectors = loadProtocol('vectors/ratelimit.json') as Vectors;
const encoder = new TextEncoder();
const bytes = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));
const silent = pino({ level: 'silent' });

describe('protocol/ratelimit.md vectors', () => {
  it('the policy vectors are valid for the schema and for the gateway', () => {
    for (const config of [vectors.policy, vectors.denied_push.policy]) {
      expect(conforms('rate-limit-policy.schema.json', config)).toBe('valid');
      expect(() => new Policy(config)).not.toThrow();
    }
  });

  it('the schema refuses what the gateway refuses (spot checks)', () => {
    const base = { id: 'p', key: 'user_id', limit: 5, windowMs: 1000 };
    for (const bad of [
      { ...base, id: '.p' },
      { ...base, id: 'a..b' },
      { ...base, id: 'x'.repeat(65) },
      { ...base, limit: 0 },
      { ...base, windowMs: 1.5 },
      { ...base, key: 'email' },
      { ...base, key: { arg: '' } },
      { ...base, algorithm: 'leaky' },
      { ...base, mode: 'global' },
      { ...base, fallback: 'maybe' },
      { ...base, scope: { requestType: 'x' } },
    ]) {
      expect(conforms('rate-limit-policy.schema.json', bad), JSON.stringify(bad)).not.toBe('valid');
      expect(() => new Policy(bad as PolicyConfig), JSON.stringify(bad)).toThrow(PolicyError);
    }
  });

  it('the denied push is what the executor builds from the limiter decision', async () => {
    const { policy, hits_at_ms, sixth_at_ms, client_push } = vectors.denied_push;
    let now = 0;
    const limiter = new RateLimiter(
      { policies: [policy] },
      silent,
      () => now,
      () => now,
    );
    const request = {
      request_id: 'r',
      service: 'demo',
      request_type: 'limited',
      args: {},
      user_id: 'alice',
      device_id: null,
    } as unknown as GenApiRequest;
    const config = { service: 'demo', requestType: 'limited' } as ResolvedFunConfig;
    const context = { ip: null, socketId: null };
    for (const at of hits_at_ms) {
      now = at;
      expect((await limiter.check(request, config, context)).allowed).toBe(true);
    }
    now = sixth_at_ms;
    const decision = await limiter.check(request, config, context);
    limiter.close();
    expect(decision.allowed).toBe(false);
    if (decision.allowed || 'unavailable' in decision) throw new Error('expected a denial');
    const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    const push = {
      ...errorResponse('r6', `Rate limit exceeded. Please retry after ${seconds} seconds.`, true),
      rate_limit: decision.details,
    };
    expect(push).toEqual(client_push);
    expect(conforms('response.schema.json', client_push)).toBe('valid');
    expect(conforms('rate-limit-details.schema.json', decision.details)).toBe('valid');
  });

  it('the socket reply and connect headers match the code', () => {
    const { response } = vectors.socket_message_denied.reply_payload;
    expect(Object.keys(response).sort()).toEqual([
      'limit',
      'policy',
      'reason',
      'remaining',
      'reset_ms',
      'retry_after_ms',
      'window_ms',
    ]);
    expect(response.reason).toBe('rate_limited');
    expect(rateLimitHeaders(vectors.connect_denied.state, true)).toEqual(
      vectors.connect_denied.headers,
    );
  });

  it('the NATS messages conform to their schemas and decode', () => {
    expect(conforms('rl-hits.schema.json', vectors.hit_batch)).toBe('valid');
    expect(conforms('rl-hits.schema.json', vectors.replay_done)).toBe('valid');
    expect(conforms('rl-heartbeat.schema.json', vectors.heartbeat)).toBe('valid');
    expect(conforms('rl-policy-change.schema.json', vectors.policy_change)).toBe('valid');
    expect(decodeReplayed(bytes(vectors.hit_batch))).toEqual(vectors.hit_batch);
    expect(decodeReplayed(bytes(vectors.replay_done))).toEqual(vectors.replay_done);
    expect(decodeHeartbeat(bytes(vectors.heartbeat))).toEqual(vectors.heartbeat);
    expect(decodePolicyChange(bytes(vectors.policy_change))).toEqual(vectors.policy_change);
    expect(conforms('rl-policy-state.schema.json', vectors.policy_sync_request)).toBe('valid');
    expect(conforms('rl-policy-state.schema.json', vectors.policy_state)).toBe('valid');
    expect(decodePolicySyncRequest(bytes(vectors.policy_sync_request))).toEqual(
      vectors.policy_sync_request,
    );
    expect(decodePolicyState(bytes(vectors.policy_state))).toEqual(vectors.policy_state);
    // A change without its version is refused by both.
    const unversioned = { o: 'x', op: 'delete', id: 'p' };
    expect(conforms('rl-policy-change.schema.json', unversioned)).not.toBe('valid');
    expect(decodePolicyChange(bytes(unversioned))).toBeNull();
    expect(conforms('rl-hits.schema.json', { o: 'x', s: 0, h: [] })).not.toBe('valid');
    expect(decodeReplayed(bytes({ o: 'x', s: 0, h: [] }))).toBeNull();
  });

  it('the policy signature is the documented HMAC, tied to the subject', () => {
    const { secret, subject, payload, header, value } = vectors.policy_signature;
    expect(header).toBe(SIGNATURE_HEADER);
    const signer = new Signer(secret);
    const data = encoder.encode(payload);
    expect(signer.headers(subject, data).get(header)).toBe(value);
    expect(JSON.parse(payload)).toEqual(vectors.policy_change);
    const msg = (on: string, sig: string | null) =>
      ({
        subject: on,
        data,
        headers: sig === null ? undefined : { get: (name: string) => (name === header ? sig : '') },
      }) as unknown as Parameters<Signer['verify']>[0];
    expect(signer.verify(msg(subject, value))).toBe(true);
    expect(signer.verify(msg('genapi.rl.hits', value))).toBe(false);
    expect(signer.verify(msg(subject, null))).toBe(false);
    expect(new Signer(`${secret}!`).verify(msg(subject, value))).toBe(false);
  });

  it('a request’s signature covers its reply subject: the documented HMAC, not valid for another inbox', () => {
    const { secret, subject, reply, payload, value } = vectors.request_signature;
    const signer = new Signer(secret);
    const data = encoder.encode(payload);
    expect(signer.headers(subject, data, reply).get(SIGNATURE_HEADER)).toBe(value);
    expect(decodeSyncRequest(data)).toEqual(JSON.parse(payload));
    const msg = (inbox: string | undefined) =>
      ({
        subject,
        reply: inbox,
        data,
        headers: { get: (name: string) => (name === SIGNATURE_HEADER ? value : '') },
      }) as unknown as Parameters<Signer['verify']>[0];
    expect(signer.verify(msg(reply))).toBe(true);
    expect(signer.verify(msg(`${reply}x`))).toBe(false);
    expect(signer.verify(msg(undefined))).toBe(false);
  });

  it('KV bucket, key and values are named as documented', () => {
    const { kv } = vectors;
    const policy = new Policy(vectors.denied_push.policy);
    expect(
      bucketName(defaultBucketPrefix(DEFAULT_PREFIX), bucketTtlSeconds(policy.horizonMs)),
    ).toBe(kv.bucket_for_window_ms_10000_sliding_log);
    expect(kvKey(policy.id, policy.storageKey('alice'))).toBe(
      kv.key_for_policy_demo_limited_user_alice,
    );
    const log = createAlgorithm('sliding_log', 5, 10_000);
    expect(log.encode(log.decode(kv.value_sliding_log))).toEqual(kv.value_sliding_log);
    const gcra = createAlgorithm('gcra', 10, 1000, 5);
    expect(gcra.encode(gcra.decode(kv.value_gcra))).toEqual(kv.value_gcra);
  });
});
