/**
 * The admin API throttles failed authentications per client IP (`maxAuthFailures` per
 * `authFailureWindowMs`): after the budget every request from that IP, a right token included,
 * is 429 with Retry-After until the window ends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createGateway, type Gateway } from '../../src/gateway.js';
import {
  adminRoute,
  ADMIN_DEFAULTS,
  ADMIN_MAX_TRACKED_IPS,
  AuthThrottle,
  type AdminOptions,
} from '../../src/admin/admin.js';
import { eventually } from '../support/wait.js';

const TOKEN = 'a-long-random-admin-token';
const gateways: Gateway[] = [];
afterEach(async () => {
  for (const gateway of gateways.splice(0)) await gateway.close();
});

async function start(options: Partial<AdminOptions> = {}) {
  const gateway = createGateway({ logger: false });
  gateways.push(gateway);
  gateway.route(
    '/admin',
    adminRoute(
      { token: TOKEN, ...options },
      {
        rateLimits: null,
        logger: pino({ enabled: false }),
        health: () => Promise.resolve({ ok: true }),
      },
    ),
  );
  const { port } = await gateway.listen(0, '127.0.0.1');
  return (token: string, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${port}/admin/health`, {
      headers: { authorization: `Bearer ${token}`, ...headers },
    });
}

describe('admin authentication throttle', () => {
  it('after maxAuthFailures wrong tokens the IP gets 429 with Retry-After, even with the right token', async () => {
    const health = await start({ maxAuthFailures: 3, authFailureWindowMs: 60_000 });
    expect((await health(TOKEN)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await health(`wrong-${i}`)).status).toBe(401);
    const blocked = await health(TOKEN);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(await blocked.json()).toEqual({
      error: 'too many failed authentications; try again later',
    });
  });

  it('the block ends with the window', async () => {
    const health = await start({ maxAuthFailures: 1, authFailureWindowMs: 1_500 });
    expect((await health('wrong')).status).toBe(401);
    expect((await health(TOKEN)).status).toBe(429);
    await eventually(async () => expect((await health(TOKEN)).status).toBe(200), 'window over');
  });

  it('behind trustedProxies the forwarded client is throttled, not the proxy (other admins pass)', async () => {
    const health = await start({ maxAuthFailures: 2, trustedProxies: ['127.0.0.1'] });
    const guesser = { 'x-forwarded-for': '203.0.113.66' };
    const admin = { 'x-forwarded-for': '203.0.113.1' };
    for (let i = 0; i < 2; i++) expect((await health(`wrong-${i}`, guesser)).status).toBe(401);
    expect((await health(TOKEN, guesser)).status).toBe(429);
    expect((await health(TOKEN, admin)).status).toBe(200);
  });

  it('defaults: 10 failures per 60 s; bad values are refused by name', () => {
    expect(ADMIN_DEFAULTS).toMatchObject({ maxAuthFailures: 10, authFailureWindowMs: 60_000 });
    const deps = { rateLimits: null, logger: pino({ enabled: false }) };
    expect(() => adminRoute({ token: TOKEN, maxAuthFailures: 0 }, deps)).toThrow(
      'admin.maxAuthFailures must be a positive integer, got 0',
    );
    expect(() => adminRoute({ token: TOKEN, authFailureWindowMs: -1 }, deps)).toThrow(
      'admin.authFailureWindowMs must be a positive integer, got -1',
    );
    expect(() => adminRoute({ token: TOKEN, trustedProxies: ['not-an-ip'] }, deps)).toThrow(
      'trustedProxies: "not-an-ip" is not an IP address or CIDR range',
    );
  });
});

describe('AuthThrottle memory bound', () => {
  it(`tracks at most ${ADMIN_MAX_TRACKED_IPS} IPs; later ones share one budget until entries expire`, () => {
    let now = 0;
    const throttle = new AuthThrottle(2, 1_000, () => now);
    for (let i = 0; i < ADMIN_MAX_TRACKED_IPS; i++) throttle.fail(`10.0.${i >> 8}.${i & 255}`);
    expect(throttle.blockedFor('10.0.0.0')).toBe(0); // one failure of two
    // Two new addresses land in the shared bucket: together they use up its budget.
    throttle.fail('203.0.113.1');
    throttle.fail('203.0.113.2');
    expect(throttle.blockedFor('203.0.113.3')).toBeGreaterThan(0);
    expect(throttle.blockedFor('10.0.0.1')).toBe(0); // tracked IPs keep their own count
    // Once the old entries expire, a new failure makes room and gets its own entry again.
    now = 1_001;
    throttle.fail('198.51.100.7');
    expect(throttle.blockedFor('198.51.100.7')).toBe(0);
    expect(throttle.blockedFor('203.0.113.3')).toBe(0);
  });
});
