import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { HttpRoute } from '../gateway.js';
import { readBody } from '../http/responses.js';
import { compileClientAddress } from '../http/client-ip.js';
import { PolicyError } from '../ratelimit/policy.js';
import type { Actor, RateLimits } from '../ratelimit/rate-limits.js';
import type { PolicyConfig } from '../ratelimit/types.js';
import { GatewayError } from '../errors.js';
import { OptionError } from '../config/errors.js';

export interface AdminOptions {
  /** Bearer token every request must carry (`Authorization: Bearer <token>`); at least 16 characters. */
  token: string;
  /** Where the API lives. Default "/admin". */
  path?: string;
  /** Failed authentications one client IP may make per window; then 429 until it ends. Default 10. */
  maxAuthFailures?: number;
  /** The window of `maxAuthFailures`, from an IP's first failure. Default 60 000 ms. */
  authFailureWindowMs?: number;
  /** Proxies (IPs or CIDR ranges) whose `Forwarded` / `X-Forwarded-For` name the client. Default none. */
  trustedProxies?: readonly string[];
}

/** The defaults of `AdminOptions`. */
export const ADMIN_DEFAULTS = { path: '/admin', maxAuthFailures: 10, authFailureWindowMs: 60_000 };

/** Client IPs whose failures are tracked at once; past it, new IPs share one budget. */
export const ADMIN_MAX_TRACKED_IPS = 10_000;

export interface AdminDeps {
  readonly rateLimits: RateLimits | null;
  readonly logger: Logger;
  /** `GET <path>/health` (src/admin/health.ts); absent: 404. */
  readonly health?: () => Promise<unknown>;
  /** Failed authentications, shared with the dashboard's socket (one budget per IP); default: its own. */
  readonly throttle?: AuthThrottle;
}

/** Largest request body the admin API reads. */
export const ADMIN_MAX_BODY_BYTES = 65_536;

/** Internal (code ERR_HTTP): ends an admin request with `status`; never leaves this module. */
class HttpError extends GatewayError {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super('ERR_HTTP', message);
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (status === 204) {
    res.writeHead(204, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const body = await readBody(req, ADMIN_MAX_BODY_BYTES);
  if (body === null) throw new HttpError(413, `body larger than ${ADMIN_MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

function allow(method: string | undefined, ...methods: string[]): void {
  if (!methods.includes(method ?? ''))
    throw new HttpError(405, `use ${methods.join(' or ')}`, { allow: methods.join(', ') });
}

interface Failures {
  count: number;
  readonly until: number;
}

/**
 * Failed bearer tokens per client IP, so the token cannot be guessed at line rate: after
 * `max` failures in a window every request from that IP (a right token too) gets 429 until the
 * window ends. Memory is bounded: past ADMIN_MAX_TRACKED_IPS, expired entries are dropped and new
 * IPs then share one budget (an attacker with many addresses locks out only that shared bucket).
 * @internal Exported for tests.
 */
export class AuthThrottle {
  private readonly failures = new Map<string, Failures>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until `ip` may try again, or 0. */
  blockedFor(ip: string): number {
    const entry = this.failures.get(this.key(ip, false));
    if (!entry) return 0;
    const left = entry.until - this.now();
    if (left <= 0) {
      this.failures.delete(this.key(ip, false));
      return 0;
    }
    return entry.count >= this.max ? left : 0;
  }

  fail(ip: string): void {
    const key = this.key(ip, true);
    const entry = this.failures.get(key);
    if (entry && entry.until > this.now()) entry.count++;
    else this.failures.set(key, { count: 1, until: this.now() + this.windowMs });
  }

  private key(ip: string, adding: boolean): string {
    if (this.failures.has(ip) || this.failures.size < ADMIN_MAX_TRACKED_IPS) return ip;
    if (adding) {
      const now = this.now();
      for (const [key, entry] of this.failures) if (entry.until <= now) this.failures.delete(key);
      if (this.failures.size < ADMIN_MAX_TRACKED_IPS) return ip;
    }
    return '*overflow*';
  }
}

function positive(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
    throw new OptionError(`admin.${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * The failed-authentication throttle `options` describe (`maxAuthFailures`, `authFailureWindowMs`,
 * validated). @internal The admin API and the dashboard share one.
 */
export function createAuthThrottle(options: AdminOptions): AuthThrottle {
  return new AuthThrottle(
    positive('maxAuthFailures', options.maxAuthFailures, ADMIN_DEFAULTS.maxAuthFailures),
    positive(
      'authFailureWindowMs',
      options.authFailureWindowMs,
      ADMIN_DEFAULTS.authFailureWindowMs,
    ),
  );
}

/**
 * The admin HTTP API (protocol/admin.md): rate-limit policies, shadow mode and per-key state,
 * behind a bearer token. Every change is logged with who made it and applied cluster-wide.
 * Failed authentications are throttled per client IP (`maxAuthFailures`, `authFailureWindowMs`).
 */
export function adminRoute(options: AdminOptions, deps: AdminDeps): HttpRoute {
  const expected = digest(options.token);
  // Behind a proxy every request has the proxy's address: one guesser would lock out every admin.
  const clientAddress = compileClientAddress(options.trustedProxies ?? []);
  const throttle = deps.throttle ?? createAuthThrottle(options);
  const authorized = (req: IncomingMessage): boolean => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    // Compare digests: constant time whatever the lengths.
    return match !== null && timingSafeEqual(digest(match[1]!.trim()), expected);
  };

  return async (req, res, subpath) => {
    try {
      const ip = clientAddress(req) || 'unknown';
      const wait = throttle.blockedFor(ip);
      if (wait > 0)
        throw new HttpError(429, 'too many failed authentications; try again later', {
          'retry-after': String(Math.ceil(wait / 1000)),
        });
      if (!authorized(req)) {
        throttle.fail(ip);
        throw new HttpError(401, 'missing or wrong bearer token', {
          'www-authenticate': 'Bearer realm="gen-gateway admin"',
        });
      }
      const actor: Actor = { via: 'admin', who: ip };
      const parts = subpath
        .split('/')
        .filter((part) => part !== '')
        .map((part) => decodeURIComponent(part));
      if (parts[0] === 'health' && parts.length === 1 && deps.health) {
        allow(req.method, 'GET');
        send(res, 200, await deps.health());
        return;
      }
      if (parts[0] !== 'rate-limits') throw new HttpError(404, 'not found');
      const rateLimits = deps.rateLimits;
      if (!rateLimits) throw new HttpError(404, 'rate limits are not enabled on this gateway');
      await rateLimitRoutes(req, res, parts.slice(1), rateLimits, actor);
    } catch (err) {
      if (err instanceof HttpError) send(res, err.status, { error: err.message }, err.headers);
      else if (err instanceof PolicyError) send(res, 400, { error: err.message });
      else if (err instanceof URIError) send(res, 400, { error: 'malformed path' });
      else {
        deps.logger.error({ err }, 'admin request failed');
        send(res, 500, { error: 'internal error' });
      }
    }
  };
}

async function rateLimitRoutes(
  req: IncomingMessage,
  res: ServerResponse,
  parts: string[],
  rateLimits: RateLimits,
  actor: Actor,
): Promise<void> {
  const [section, id, keys, value, ...rest] = parts;
  if (section === undefined) {
    allow(req.method, 'GET');
    send(res, 200, rateLimits.health());
    return;
  }
  if (section === 'shadow' && id === undefined) {
    allow(req.method, 'PUT');
    const body = (await jsonBody(req)) as { shadow?: unknown } | null;
    if (typeof body?.shadow !== 'boolean')
      throw new HttpError(400, 'body must be {"shadow": true|false}');
    rateLimits.setShadow(body.shadow, actor);
    send(res, 200, { shadow: body.shadow });
    return;
  }
  if (section !== 'policies' || rest.length > 0) throw new HttpError(404, 'not found');
  if (id === undefined) {
    allow(req.method, 'GET');
    send(res, 200, { policies: rateLimits.limiter.policies().map((policy) => policy.config) });
    return;
  }
  if (keys === undefined) {
    allow(req.method, 'GET', 'PUT', 'DELETE');
    if (req.method === 'GET') {
      const view = rateLimits.health().policies.find((policy) => policy.config.id === id);
      if (!view) throw new HttpError(404, `no policy "${id}"`);
      send(res, 200, view);
    } else if (req.method === 'PUT') {
      const body = await jsonBody(req);
      if (body === null || typeof body !== 'object' || Array.isArray(body))
        throw new HttpError(400, 'body must be a policy object');
      const config = body as Partial<PolicyConfig>;
      if (config.id !== undefined && config.id !== id)
        throw new HttpError(400, `body id "${String(config.id)}" differs from the path's "${id}"`);
      const existed = rateLimits.limiter.policy(id) !== undefined;
      const policy = rateLimits.putPolicy({ ...config, id } as PolicyConfig, actor);
      send(res, existed ? 200 : 201, { policy: policy.config });
    } else {
      if (!rateLimits.deletePolicy(id, actor)) throw new HttpError(404, `no policy "${id}"`);
      send(res, 204, null);
    }
    return;
  }
  if (keys !== 'keys' || value === undefined) throw new HttpError(404, 'not found');
  allow(req.method, 'GET', 'DELETE');
  if (req.method === 'GET') {
    const status = await rateLimits.status(id, value);
    if (!status) throw new HttpError(404, `no policy "${id}"`);
    const { decision, source } = status;
    send(res, 200, {
      policy: id,
      key: value,
      source,
      limit: decision.limit,
      window_ms: decision.windowMs,
      remaining: decision.remaining,
      reset_ms: decision.resetMs,
      retry_after_ms: decision.retryAfterMs,
      allowed: decision.allowed,
    });
  } else {
    const outcome = await rateLimits.reset(id, value, actor);
    if (outcome === 'unknown') throw new HttpError(404, `no policy "${id}"`);
    if (outcome === 'partial')
      throw new HttpError(
        503,
        'reset on this gateway only: the rate-limit store could not be reached; try again',
      );
    send(res, 204, null);
  }
}
