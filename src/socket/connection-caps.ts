/** The connection caps of one socket mount (`SocketOptions.maxConnections*`); null: no cap. */
export interface ConnectionCapLimits {
  readonly maxConnections: number | null;
  readonly maxConnectionsPerIp: number | null;
  readonly maxConnectionsPerUser: number | null;
}

/** Why a connection was refused: the HTTP status of the upgrade / LongPoll answer and its body. */
export interface CapRefusal {
  readonly status: 429 | 503;
  readonly reason: string;
}

interface Holder {
  readonly ip: string | null;
  readonly user: string | null;
}

const FULL: CapRefusal = { status: 503, reason: 'too many connections' };
const PER_IP: CapRefusal = { status: 429, reason: 'too many connections from this address' };
const PER_USER: CapRefusal = { status: 429, reason: 'too many connections for this user' };

function bump(map: Map<string, number>, key: string | null, by: number): void {
  if (key === null) return;
  const next = (map.get(key) ?? 0) + by;
  if (next <= 0) map.delete(key);
  else map.set(key, next);
}

/**
 * Counts a mount's connections in total, per client IP and per user id. A connection is counted
 * from the moment it is admitted (after the connect hook, before the upgrade completes), so
 * handshakes running concurrently cannot all slip under a cap; an admission the transport never
 * turns into a session (the client went away mid-upgrade) is returned on the next turn.
 */
export class ConnectionCaps {
  private total = 0;
  private readonly byIp = new Map<string, number>();
  private readonly byUser = new Map<string, number>();
  /** Admitted, not yet a session: keyed by the session's init object. */
  private readonly pending = new Map<object, Holder>();
  /** Live sessions' holds. */
  private readonly held = new WeakMap<object, Holder>();
  private sweep: NodeJS.Immediate | null = null;

  constructor(private readonly limits: ConnectionCapLimits) {}

  /** Would a connection from `ip` (and, once known, `user`) be refused now? */
  check(ip: string | null, user: string | null): CapRefusal | null {
    const { maxConnections, maxConnectionsPerIp, maxConnectionsPerUser } = this.limits;
    if (maxConnections !== null && this.total >= maxConnections) return FULL;
    if (
      ip !== null &&
      maxConnectionsPerIp !== null &&
      (this.byIp.get(ip) ?? 0) >= maxConnectionsPerIp
    )
      return PER_IP;
    if (
      user !== null &&
      maxConnectionsPerUser !== null &&
      (this.byUser.get(user) ?? 0) >= maxConnectionsPerUser
    )
      return PER_USER;
    return null;
  }

  /** Checks and, if allowed, counts the connection under `key` until `claim` or the next turn. */
  admit(key: object, ip: string | null, user: string | null): CapRefusal | null {
    const refusal = this.check(ip, user);
    if (refusal) return refusal;
    this.add({ ip, user }, 1);
    this.pending.set(key, { ip, user });
    this.sweep ??= setImmediate(() => this.expire());
    return null;
  }

  /** The admission `key` became `session`: it stays counted until `release(session)`. */
  claim(key: object, session: object): void {
    const holder = this.pending.get(key);
    if (!holder) return;
    this.pending.delete(key);
    this.held.set(session, holder);
  }

  release(session: object): void {
    const holder = this.held.get(session);
    if (!holder) return;
    this.held.delete(session);
    this.add(holder, -1);
  }

  /** Connections counted now (for tests and stats). */
  get count(): number {
    return this.total;
  }

  private expire(): void {
    this.sweep = null;
    for (const holder of this.pending.values()) this.add(holder, -1);
    this.pending.clear();
  }

  private add(holder: Holder, by: number): void {
    this.total += by;
    bump(this.byIp, holder.ip, by);
    bump(this.byUser, holder.user, by);
  }
}
