import type { Logger } from 'pino';
import type { Assigns } from '../channel/types.js';
import { ConfigError } from '../config/errors.js';
import type { JoinAuthorizer, TokenRefresher } from '../config/socket-options.js';
import type { ConnectHook } from '../socket/connect.js';
import { authConnectHook, authStats, authTokenRefresher, type AuthStats } from './connect.js';
import { compileJoinRules, type JoinDelegate, type JoinRulesOptions } from './join-rules.js';
import { createJwtStrategy, type JwtOptions } from './jwt.js';
import { createPhoenixTokenStrategy, type PhoenixTokenOptions } from './phoenix-token.js';
import type { AuthStrategy } from './types.js';
import {
  createWorkerAuthStrategy,
  createWorkerJoinCheck,
  type AuthNatsLink,
  type WorkerAuthOptions,
} from './worker.js';

/**
 * The config file's `auth` section (README: Authentication): exactly one strategy, optional join
 * rules, and whether clients may push a fresh token. With it, connect params never set identity.
 */
export interface AuthConfig {
  /** Tokens minted by `Phoenix.Token.sign` (the Elixir backend keeps minting them). */
  readonly phoenixToken?: PhoenixTokenOptions;
  /** JWTs from an identity provider (secret, public key or JWKS). */
  readonly jwt?: JwtOptions;
  /** A worker service decides over NATS (`<p>.auth.<service>.connect`); also answers `join` checks. */
  readonly worker?: WorkerAuthOptions;
  /** Who may join which topics (rules without code; the auth worker for the rest). */
  readonly join?: JoinRulesOptions;
  /**
   * Clients may push `access_token` on the `phoenix` topic to extend their socket's expiry
   * without reconnecting. Default true.
   */
  readonly refresh?: boolean;
}

const KEYS = new Set(['phoenixToken', 'jwt', 'worker', 'join', 'refresh']);
const STRATEGIES = ['phoenixToken', 'jwt', 'worker'] as const;

/** What the gateway's socket gets from `auth`. */
export interface AuthSetup {
  /** The strategy's name. */
  readonly strategy: string;
  /** The connect hook: identity from the token only. */
  readonly connect: ConnectHook<Assigns>;
  /** `auth.join` as the socket's join guard, or null without join rules or an auth worker. */
  readonly authorizeJoin: JoinAuthorizer | null;
  /** The `access_token` handler, or null when `refresh` is false. */
  readonly refreshToken: TokenRefresher | null;
  /** Counters (`/admin/health` `auth`). */
  readonly stats: AuthStats;
}

/** Checks `auth` and builds its parts; `nats` is read at each question (the auth worker). */
export function setUpAuth(
  config: AuthConfig,
  logger: Logger,
  nats: () => AuthNatsLink | null,
): AuthSetup {
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    throw new ConfigError('"auth" must be an object');
  for (const key of Object.keys(config))
    if (!KEYS.has(key)) throw new ConfigError(`unknown setting "auth.${key}"`);
  const chosen = STRATEGIES.filter((name) => config[name] !== undefined);
  if (chosen.length !== 1)
    throw new ConfigError(
      `"auth" needs exactly one of phoenixToken, jwt or worker (got ${chosen.length === 0 ? 'none' : chosen.join(', ')})`,
    );
  if (config.refresh !== undefined && typeof config.refresh !== 'boolean')
    throw new ConfigError('auth.refresh must be true or false');
  const log = logger.child({ component: 'auth' });
  const strategy = build(config, nats);
  const stats = authStats(strategy.name);
  const delegate: JoinDelegate | null =
    config.worker === undefined
      ? null
      : joinDelegate(createWorkerJoinCheck(config.worker, nats), log);
  const authorizeJoin =
    config.join === undefined && delegate === null
      ? null
      : compileJoinRules(config.join ?? {}, delegate);
  return {
    strategy: strategy.name,
    connect: authConnectHook(strategy, stats, log),
    authorizeJoin,
    refreshToken: config.refresh === false ? null : authTokenRefresher(strategy, log),
    stats,
  };
}

function build(config: AuthConfig, nats: () => AuthNatsLink | null): AuthStrategy {
  if (config.phoenixToken !== undefined) return createPhoenixTokenStrategy(config.phoenixToken);
  if (config.jwt !== undefined) return createJwtStrategy(config.jwt);
  return createWorkerAuthStrategy(config.worker!, nats);
}

/** The auth worker's join check as a join delegate (a refusal's reason goes to the log). */
function joinDelegate(
  check: ReturnType<typeof createWorkerJoinCheck>,
  logger: Logger,
): JoinDelegate {
  return async (topic, payload, assigns) => {
    const own = assigns as { user_id?: unknown; device_id?: unknown; roles?: unknown };
    const decision = await check({
      topic,
      payload,
      userId: typeof own.user_id === 'string' ? own.user_id : null,
      deviceId: typeof own.device_id === 'string' ? own.device_id : null,
      roles: Array.isArray(own.roles) ? (own.roles as string[]) : [],
      assigns: assigns as Record<string, unknown>,
    });
    if (decision.ok) return true;
    const line = { topic, user: own.user_id, reason: decision.reason };
    if (decision.unavailable) logger.error(line, 'join refused: the auth worker is unavailable');
    else logger.info(line, 'join refused by the auth worker');
    return { reason: 'unauthorized' };
  };
}
