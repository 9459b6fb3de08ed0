/**
 * The snapshot's bounded scans, in-process (no sockets needed to fill a PubSub or a rate-limit
 * store): the top topics among the first DASHBOARD_LIMITS.topicScan topics with the rest counted
 * as unscanned, and the top keys of a policy (blocked first, then least remaining) among its first
 * DASHBOARD_LIMITS.keyScan keys.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createGateway, createGenApi } from '../../src/index.js';
import type { Subscriber } from '../../src/channel/pubsub.js';
import { DASHBOARD_LIMITS, resolveDashboardOptions } from '../../src/dashboard/options.js';
import { RequestWindow } from '../../src/dashboard/request-window.js';
import { takeSnapshot } from '../../src/dashboard/snapshot.js';

const gateway = createGateway({ logger: false });
const genApi = createGenApi(gateway, {
  rateLimits: {
    policies: [{ id: 'per-user', key: 'user_id', limit: 5, windowMs: 60_000 }],
  },
});
afterAll(() => gateway.close());

function snapshot(options: Parameters<typeof resolveDashboardOptions>[0] = {}) {
  return takeSnapshot({
    gateway,
    genApi,
    options: resolveDashboardOptions(options),
    requests: new RequestWindow(10_000, 10, () => performance.now()),
    viewers: 0,
    natsRttMs: null,
  });
}

/** Uses `hits` of `key`'s quota in the per-user policy (as allowed requests would). */
function use(key: string, hits: number): void {
  const limiter = genApi.rateLimits!.limiter;
  const policy = limiter.policy('per-user')!;
  const now = limiter.clockFor(policy)();
  const slot = policy.store.ensure(key, policy.createState, now)!;
  for (let i = 0; i < hits; i++) policy.algorithm.commit(slot.state, now, 1);
  policy.store.touch(slot, policy.algorithm.expiresAt(slot.state));
}

describe('snapshot scans', () => {
  it(`top topics come from the first ${DASHBOARD_LIMITS.topicScan} topics; the rest are counted as unscanned`, () => {
    const subscribers: Subscriber[] = Array.from({ length: 4 }, () => ({ deliver: () => {} }));
    const extra = 5;
    for (let i = 0; i < DASHBOARD_LIMITS.topicScan + extra; i++)
      gateway.pubsub.subscribe(`t:${i}`, subscribers[0]!);
    for (const s of subscribers) gateway.pubsub.subscribe('t:7', s);
    for (const s of subscribers.slice(0, 2)) gateway.pubsub.subscribe('t:3', s);
    // Past the scan limit: never looked at, however busy.
    for (const s of subscribers) gateway.pubsub.subscribe(`t:${DASHBOARD_LIMITS.topicScan + 1}`, s);
    const channels = snapshot({ topTopics: 3 }).channels;
    expect(channels.topics).toBe(DASHBOARD_LIMITS.topicScan + extra);
    expect(channels.unscanned).toBe(extra);
    expect(channels.top).toEqual([
      { topic: 't:7', subscribers: 4 },
      { topic: 't:3', subscribers: 2 },
      { topic: 't:0', subscribers: 1 },
    ]);
    expect(snapshot({ topTopics: 0 }).channels).toMatchObject({ top: [], unscanned: 0 });
    for (let i = 0; i < DASHBOARD_LIMITS.topicScan + extra; i++)
      for (const s of subscribers) gateway.pubsub.unsubscribe(`t:${i}`, s);
    expect(snapshot().channels.topics).toBe(0);
  });

  it(`top keys: blocked first, then least remaining, from the first ${DASHBOARD_LIMITS.keyScan} keys`, () => {
    use('light', 1);
    use('blocked', 5);
    use('heavy', 4);
    use('medium', 2);
    for (let i = 0; i < DASHBOARD_LIMITS.keyScan; i++) use(`filler:${i}`, 1);
    use('unscanned-blocked', 5); // past the scan limit
    const policy = snapshot({ topKeys: 3 }).rateLimits!.policies[0]!;
    expect(policy.keys).toBe(DASHBOARD_LIMITS.keyScan + 5);
    // remaining is what is left after one more request (none for a blocked key).
    expect(policy.topKeys).toEqual([
      { key: 'blocked', remaining: 0, limit: 5, blocked: true },
      { key: 'heavy', remaining: 0, limit: 5, blocked: false },
      { key: 'medium', remaining: 2, limit: 5, blocked: false },
    ]);
    expect(snapshot({ topKeys: 0 }).rateLimits!.policies[0]!.topKeys).toEqual([]);
  });
});
