import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { OptionError } from '../errors.js';

/** Forwarded hops walked from the right at most (a longer chain stops there). */
export const MAX_FORWARDED_HOPS = 32;

/** `::ffff:10.0.0.1` → `10.0.0.1`, so IPv4 proxies match however the socket reports them. */
function bareIp(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** `"1.2.3.4:80"`, `"[::1]:80"`, `"\"[::1]\""`, `unknown`, `_hidden` → the IP, or null. */
function hopAddress(raw: string): string | null {
  let text = raw.trim();
  if (text.startsWith('"') && text.endsWith('"') && text.length >= 2) text = text.slice(1, -1);
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) text = bracketed[1]!;
  else if (/^[^:]+:\d+$/.test(text)) text = text.slice(0, text.indexOf(':'));
  text = bareIp(text);
  return isIP(text) === 0 ? null : text;
}

/** The `for=` hops of a `Forwarded` header (RFC 7239), in order, as raw values. */
function forwardedHops(header: string): string[] {
  const hops: string[] = [];
  for (const element of header.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim().toLowerCase() === 'for') hops.push(pair.slice(eq + 1));
    }
  }
  return hops;
}

/**
 * Compiles `trustedProxies` (IPs or CIDR ranges, IPv4 or IPv6) into a function that names the
 * client of a request: the peer address, unless the peer is a trusted proxy; then the
 * `Forwarded` header's `for=` hops (or, without it, `X-Forwarded-For`) are read from the right,
 * skipping trusted proxies, and the first untrusted hop is the client. A malformed hop stops the
 * walk at the last address known good, so a client cannot inject a name past its own proxy.
 */
export function compileClientAddress(
  trustedProxies: readonly string[],
): (req: IncomingMessage) => string {
  if (!Array.isArray(trustedProxies))
    throw new OptionError('trustedProxies must be a list of IP addresses or CIDR ranges');
  const peerOf = (req: IncomingMessage): string => bareIp(req.socket.remoteAddress ?? '');
  if (trustedProxies.length === 0) return peerOf;
  const trusted = new BlockList();
  for (const entry of trustedProxies) {
    const [ip = '', bits, extra] = String(entry).split('/');
    const family = isIP(ip);
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (
      typeof entry !== 'string' ||
      family === 0 ||
      extra !== undefined ||
      !Number.isInteger(prefix) ||
      prefix < 0 ||
      prefix > (family === 6 ? 128 : 32)
    ) {
      throw new OptionError(
        `trustedProxies: ${JSON.stringify(entry)} is not an IP address or CIDR range (e.g. "10.0.0.0/8")`,
      );
    }
    trusted.addSubnet(ip, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  const isTrusted = (ip: string): boolean => trusted.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');

  return (req) => {
    const peer = peerOf(req);
    if (peer === '' || !isTrusted(peer)) return peer;
    const forwarded = req.headers.forwarded;
    let hops: string[];
    if (typeof forwarded === 'string' && forwarded !== '') hops = forwardedHops(forwarded);
    else {
      const xff = req.headers['x-forwarded-for'];
      const text = Array.isArray(xff) ? xff.join(',') : (xff ?? '');
      hops = text === '' ? [] : text.split(','); // bounded by Node's header size limit
    }
    let client = peer;
    for (let i = hops.length - 1; i >= 0 && hops.length - i <= MAX_FORWARDED_HOPS; i--) {
      const hop = hopAddress(hops[i]!);
      if (hop === null) break;
      client = hop;
      if (!isTrusted(hop)) break;
    }
    return client;
  };
}
