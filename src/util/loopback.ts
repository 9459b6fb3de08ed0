import { BlockList, isIP } from 'node:net';

// 127.0.0.0/8 and ::1; BlockList also matches their IPv4-mapped and expanded IPv6 spellings.
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether a listen host reaches only this machine: `localhost`, 127.0.0.0/8 or ::1 (bracketed or
 * IPv4-mapped too). Anything else (0.0.0.0, ::, a public address, any other host name) may be
 * reachable from elsewhere. Host names are not resolved: only `localhost` is known to be local.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost' || bare === 'localhost.') return true;
  const family = isIP(bare);
  if (family === 0) return false;
  return LOOPBACK.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}
