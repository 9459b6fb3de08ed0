import type { Logger } from 'pino';
import type { Assigns } from '../channel/types.js';
import { refuse, type ConnectHook, type ConnectInfo } from '../socket/connect.js';
import {
  isAuthFailure,
  type AuthFailureReason,
  type AuthRequest,
  type AuthStrategy,
  type Identity,
} from './types.js';

/** The socket assigns an authenticated connect gets (plus the strategy's extra assigns). */
export interface AuthAssigns {
  /** The user id. */
  readonly user_id: string;
  /** The device id, or null. */
  readonly device_id: string | null;
  /** Roles (gen_api `{role: ...}` permissions). */
  readonly roles: readonly string[];
}

/** Counters of the config's authentication (`/admin/health` `auth`). */
export interface AuthStats {
  /** The strategy in use. */
  readonly strategy: string;
  /** Connects accepted. */
  accepted: number;
  /** Connects refused, by reason (expired sockets: `gateway.stats.tokenExpired`). */
  readonly refused: Record<AuthFailureReason, number>;
}

/** Fresh counters for `strategy`. */
export function authStats(strategy: string): AuthStats {
  return {
    strategy,
    accepted: 0,
    refused: { missing: 0, malformed: 0, invalid: 0, expired: 0, unavailable: 0 },
  };
}

/** The socket id of an authenticated user: `gateway.disconnect("user:42")` closes its sockets. */
export function socketIdOf(userId: string): string {
  return `user:${userId}`;
}

/** What a strategy sees of a connect: the token (param `token`, else the authToken) and the rest. */
export function authRequestOf(info: ConnectInfo): AuthRequest {
  const { token: param, ...params } = info.params as Record<string, unknown>;
  const token =
    typeof param === 'string' && param !== ''
      ? param
      : info.authToken !== null && info.authToken !== ''
        ? info.authToken
        : null;
  return { token, params, headers: info.headers, peer: info.peer, transport: info.transport };
}

/** Identity → socket assigns: the strategy's extra assigns never override the mapped fields. */
export function assignsOf(identity: Identity): AuthAssigns & Record<string, unknown> {
  return {
    ...identity.assigns,
    user_id: identity.userId,
    device_id: identity.deviceId,
    roles: identity.roles,
  };
}

/**
 * The connect hook of a config-file `auth` strategy: identity only from the token (connect
 * params never set it). A refusal is a bare HTTP 403 on either transport — the reason goes to
 * the log and the counters, never to the client; the socket closes when its token expires.
 */
export function authConnectHook(
  strategy: AuthStrategy,
  stats: AuthStats,
  logger: Logger,
): ConnectHook<Assigns> {
  return async (info) => {
    const answer = await strategy.authenticate(authRequestOf(info));
    if (isAuthFailure(answer)) {
      stats.refused[answer.reason]++;
      const line = {
        strategy: strategy.name,
        reason: answer.reason,
        transport: info.transport,
        peer: info.peer.address,
      };
      if (answer.reason === 'unavailable') logger.error(line, `connect refused: ${answer.message}`);
      else logger.info(line, `connect refused: ${answer.message}`);
      return refuse(403);
    }
    stats.accepted++;
    return {
      assigns: assignsOf(answer),
      id: socketIdOf(answer.userId),
      expiresAt: answer.expiresAt,
    };
  };
}

/**
 * The socket option `refreshToken` for a strategy: a pushed token must authenticate the same
 * user; it then moves the socket's expiry (roles and assigns stay those of the connect).
 */
export function authTokenRefresher(
  strategy: AuthStrategy,
  logger: Logger,
): (token: string, assigns: Assigns) => Promise<{ expiresAt: number | null } | { reason: string }> {
  return async (token, assigns) => {
    const current = (assigns as { user_id?: unknown }).user_id;
    const answer = await strategy.authenticate({
      token,
      params: {},
      headers: {},
      peer: { address: '', port: 0 },
      transport: 'refresh',
    });
    if (isAuthFailure(answer)) {
      logger.info(
        { strategy: strategy.name, reason: answer.reason, user: current },
        `token refresh refused: ${answer.message}`,
      );
      return { reason: answer.reason === 'unavailable' ? 'unavailable' : 'invalid token' };
    }
    if (answer.userId !== current) return { reason: 'token is for another user' };
    return { expiresAt: answer.expiresAt };
  };
}
