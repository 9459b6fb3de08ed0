import { createHash, timingSafeEqual } from 'node:crypto';
import type { AdminOptions } from '../admin/admin.js';
import type { AuthThrottle } from '../admin/admin.js';
import { ConfigError } from '../config/errors.js';
import { refuse, type ConnectHook } from '../socket/connect.js';
import { isLoopbackHost } from '../util/loopback.js';

/**
 * Who may watch: holders of the admin token (from anywhere), or, in the demo without an admin
 * token, clients on this machine (the TCP peer is a loopback address; no forwarding header counts).
 */
export type DashboardAccess =
  { readonly kind: 'token'; readonly admin: AdminOptions } | { readonly kind: 'loopback' };

/** What the dashboard's socket knows about a viewer. */
export interface ViewerAssigns {
  /** The viewer's address (for the log). */
  readonly viewer: string;
}

/**
 * The dashboard's access rule, or null for no dashboard: the admin token when one is configured;
 * loopback only in the demo without one; otherwise none (`enabled: true` then is an error).
 */
export function dashboardAccess(options: {
  readonly enabled: boolean | undefined;
  readonly admin: AdminOptions | undefined;
  readonly demo: boolean;
}): DashboardAccess | null {
  if (options.enabled === false) return null;
  if (options.admin !== undefined) return { kind: 'token', admin: options.admin };
  if (options.demo) return { kind: 'loopback' };
  if (options.enabled === true)
    throw new ConfigError(
      'dashboard.enabled needs admin.token (viewers must present it) or the demo (loopback only)',
    );
  return null;
}

/** Whether a TCP peer address is this machine (127.0.0.0/8, ::1, IPv4-mapped spellings). */
export function isLoopbackPeer(address: string | undefined): boolean {
  return address !== undefined && address !== '' && isLoopbackHost(address);
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** The connect param a client without subprotocol support may carry the token in. */
export const TOKEN_PARAM = 'token';

/**
 * The dashboard socket's connect hook. Token mode: the admin token, from the `authToken`
 * subprotocol (what the page sends: it stays out of URLs and logs) or the `token` connect param,
 * compared in constant time; failures count in the admin API's throttle (one budget per client IP
 * for both), and a throttled IP gets 429 whatever it sends. Loopback mode: the peer must be local.
 */
export function viewerConnect(
  access: DashboardAccess,
  throttle: AuthThrottle | null,
): ConnectHook<ViewerAssigns> {
  if (access.kind === 'loopback') {
    return ({ peer }) =>
      isLoopbackPeer(peer.address)
        ? { assigns: { viewer: peer.address } }
        : refuse(403, 'the dashboard is open to loopback clients only (demo without admin.token)');
  }
  const expected = digest(access.admin.token);
  return ({ authToken, params, peer }) => {
    const ip = peer.address || 'unknown';
    const wait = throttle?.blockedFor(ip) ?? 0;
    if (wait > 0)
      return refuse(429, 'too many failed authentications; try again later', {
        'retry-after': String(Math.ceil(wait / 1000)),
      });
    const param = params[TOKEN_PARAM];
    const given = authToken ?? (typeof param === 'string' ? param : null);
    // Digests: constant time whatever the lengths.
    if (given === null || !timingSafeEqual(digest(given), expected)) {
      throttle?.fail(ip);
      return refuse(401, 'missing or wrong admin token');
    }
    return { assigns: { viewer: ip } };
  };
}
