import type { IncomingMessage } from 'node:http';
import { OptionError } from '../errors.js';

/**
 * Origin checking for browser connections (Phoenix's `check_origin`). Only requests that carry
 * an `Origin` header are checked, so non-browser clients always pass.
 *
 * - `false`: no check.
 * - `true` (default): the Origin's host must be one of the configured public hosts
 *   (`SocketOptions.publicHosts`, default `localhost`, `127.0.0.1`, `[::1]`), like Phoenix's check
 *   against the endpoint's configured url host. The request's `Host` header is NOT trusted: a page
 *   on a DNS-rebound name sends a matching Host header.
 * - `"conn"`: the Origin's scheme, host and port must equal the request's.
 * - a list such as `["https://example.com", "//another.com:888", "//*.other.com"]`: scheme, host
 *   and port are each compared when the entry gives them; `*.` matches the domain and subdomains.
 * - a function `(origin, req) => boolean`.
 */
export type CheckOrigin =
  boolean | 'conn' | readonly string[] | ((origin: string, req: IncomingMessage) => boolean);

/** The public hosts `checkOrigin: true` accepts when none are configured (Phoenix: localhost). */
export const DEFAULT_PUBLIC_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/** Validates and lower-cases `publicHosts` entries: `example.com`, `*.example.com`, `[::1]`. */
export function parsePublicHosts(hosts: readonly unknown[]): string[] {
  return hosts.map((host) => {
    if (
      typeof host !== 'string' ||
      !/^(?:\*\.)?(?:\[[0-9a-fA-F:.]+\]|[^/:?#[\]\s*]+)$/.test(host)
    ) {
      throw new OptionError(
        `publicHosts: ${JSON.stringify(host)} is not a host name (e.g. "example.com", "*.example.com")`,
      );
    }
    return host.toLowerCase();
  });
}

interface OriginPattern {
  readonly scheme: string | null;
  readonly host: string;
  readonly port: number | null;
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443 };

/** Parses "scheme://host:port" or "//host:port" (the scheme may be absent; IPv6 hosts in brackets). */
function parseOrigin(text: string): OriginPattern | null {
  const match =
    /^(?:([a-zA-Z][a-zA-Z0-9+.-]*):)?\/\/(\[[0-9a-fA-F:.]+\]|[^/:?#[\]]+)(?::(\d+))?\/?$/.exec(
      text.trim(),
    );
  if (!match) return null;
  const scheme = match[1]?.toLowerCase() ?? null;
  const explicitPort = match[3] === undefined ? null : Number(match[3]);
  const port = explicitPort ?? (scheme !== null ? (DEFAULT_PORTS[scheme] ?? null) : null);
  return { scheme, host: match[2]!.toLowerCase(), port };
}

function hostMatches(host: string, allowed: string): boolean {
  if (allowed.startsWith('*.')) {
    const domain = allowed.slice(2);
    return host === domain || host.endsWith('.' + domain);
  }
  return host === allowed;
}

function requestHost(req: IncomingMessage): { host: string; port: number | null } | null {
  const header = req.headers.host;
  if (!header) return null;
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(header);
  if (!match) return null;
  return { host: match[1]!.toLowerCase(), port: match[2] === undefined ? null : Number(match[2]) };
}

/** Compiles a CheckOrigin setting into a predicate over (Origin header, request). */
export function compileCheckOrigin(
  setting: CheckOrigin,
  publicHosts: readonly string[] = DEFAULT_PUBLIC_HOSTS,
): (origin: string | undefined, req: IncomingMessage) => boolean {
  if (setting === false) return () => true;
  if (typeof setting === 'function') {
    return (origin, req) => origin === undefined || setting(origin, req);
  }
  if (setting === true) {
    const hosts = parsePublicHosts(publicHosts);
    return (origin) => {
      if (origin === undefined) return true;
      const parsed = parseOrigin(origin);
      return parsed !== null && hosts.some((host) => hostMatches(parsed.host, host));
    };
  }
  if (setting === 'conn') {
    return (origin, req) => {
      if (origin === undefined) return true;
      const parsed = parseOrigin(origin);
      const own = requestHost(req);
      if (!parsed || !own || parsed.host !== own.host) return false;
      const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
      const scheme = encrypted ? 'https' : 'http';
      const port = own.port ?? DEFAULT_PORTS[scheme]!;
      return parsed.scheme === scheme && parsed.port === port;
    };
  }
  const patterns = setting.map((entry) => {
    const parsed = parseOrigin(entry);
    if (!parsed) throw new OptionError(`checkOrigin: invalid origin ${JSON.stringify(entry)}`);
    return parsed;
  });
  return (origin) => {
    if (origin === undefined) return true;
    const parsed = parseOrigin(origin);
    if (!parsed) return false;
    return patterns.some(
      (allowed) =>
        (allowed.scheme === null || allowed.scheme === parsed.scheme) &&
        (allowed.port === null || allowed.port === parsed.port) &&
        hostMatches(parsed.host, allowed.host),
    );
  };
}
