import type { Assigns } from '../channel/types.js';
import { ConfigError } from '../config/errors.js';
import type { JoinAuthorizer } from '../config/socket-options.js';

/** One rule of `auth.join.rules`. */
export interface JoinRule {
  /**
   * A topic pattern: literal text, `{user_id}` / `{device_id}` (must equal the socket's own),
   * and a trailing `*` (any rest). E.g. `room:{user_id}`, `admin:*`, `device:{device_id}:*`.
   */
  readonly topic: string;
  /** The socket needs one of these roles. Default: any authenticated socket. */
  readonly roles?: readonly string[];
}

/** `auth.join`: rules in order, and what decides topics no rule matches. */
export interface JoinRulesOptions {
  /**
   * A topic that some rule's pattern matches may be joined when one of those rules lets the
   * socket in (its placeholders name this socket, it has one of the roles), and is refused
   * otherwise. Default: none.
   */
  readonly rules?: readonly JoinRule[];
  /**
   * Topics no rule matches: `allow` (the channel's own join decides), `deny`, or `worker` (the
   * auth worker's join check, `auth.worker`). Default `allow`.
   */
  readonly otherwise?: 'allow' | 'deny' | 'worker';
}

/** The refusal every rule gives (the reason Phoenix apps conventionally send). */
export const JOIN_REFUSED = { reason: 'unauthorized' } as const;

/** A delegated join check (the auth worker): true, or a refusal. */
export type JoinDelegate = (
  topic: string,
  payload: unknown,
  assigns: Assigns,
) => Promise<true | { readonly reason: string }>;

interface CompiledRule {
  readonly pattern: RegExp;
  /** Which assigns field each capture group must equal. */
  readonly fields: readonly ('user_id' | 'device_id')[];
  readonly roles: ReadonlySet<string> | null;
}

const PLACEHOLDER = /\{(user_id|device_id)\}/g;

function compileRule(rule: JoinRule, index: number): CompiledRule {
  const where = `auth.join.rules[${index}]`;
  if (typeof rule.topic !== 'string' || rule.topic === '')
    throw new ConfigError(`${where}.topic must be a non-empty string`);
  const star = rule.topic.endsWith('*');
  const body = star ? rule.topic.slice(0, -1) : rule.topic;
  if (body.includes('*'))
    throw new ConfigError(`${where}.topic: "*" is only allowed at the end (${rule.topic})`);
  const unknown = /\{(?!user_id\}|device_id\})[^}]*\}/.exec(body);
  if (unknown)
    throw new ConfigError(`${where}.topic: unknown placeholder ${unknown[0]} (user_id, device_id)`);
  const fields: ('user_id' | 'device_id')[] = [];
  let source = '';
  let last = 0;
  for (const match of body.matchAll(PLACEHOLDER)) {
    source += escape(body.slice(last, match.index));
    source += '([^:]+)';
    fields.push(match[1] as 'user_id' | 'device_id');
    last = match.index + match[0].length;
  }
  source += escape(body.slice(last)) + (star ? '[\\s\\S]*' : '');
  if (
    rule.roles !== undefined &&
    (!Array.isArray(rule.roles) || rule.roles.some((role) => typeof role !== 'string'))
  )
    throw new ConfigError(`${where}.roles must be a list of strings`);
  return {
    pattern: new RegExp(`^${source}$`),
    fields,
    roles: rule.roles === undefined ? null : new Set(rule.roles),
  };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function field(assigns: Assigns, name: 'user_id' | 'device_id' | 'roles'): unknown {
  return (assigns as Record<string, unknown>)[name];
}

/**
 * `auth.join` as a socket's `authorizeJoin`: rules without code for who may join what (a
 * user's own topics, a role for a pattern), the auth worker for the rest when configured.
 */
export function compileJoinRules(
  options: JoinRulesOptions,
  delegate: JoinDelegate | null,
): JoinAuthorizer {
  const rules = (options.rules ?? []).map(compileRule);
  const otherwise = options.otherwise ?? 'allow';
  if (!['allow', 'deny', 'worker'].includes(otherwise))
    throw new ConfigError('auth.join.otherwise must be "allow", "deny" or "worker"');
  if (otherwise === 'worker' && delegate === null)
    throw new ConfigError('auth.join.otherwise "worker" needs auth.worker (the auth service)');
  return (topic, payload, assigns) => {
    let matched = false;
    for (const rule of rules) {
      const match = rule.pattern.exec(topic);
      if (!match) continue;
      matched = true;
      if (satisfies(rule, match, assigns)) return true;
    }
    // Some rule names this topic and none lets this socket in.
    if (matched) return JOIN_REFUSED;
    if (otherwise === 'allow') return true;
    if (otherwise === 'deny') return JOIN_REFUSED;
    return delegate!(topic, payload, assigns);
  };
}

/** The socket is the one the placeholders name and has one of the rule's roles. */
function satisfies(rule: CompiledRule, match: RegExpExecArray, assigns: Assigns): boolean {
  for (let i = 0; i < rule.fields.length; i++) {
    const own = field(assigns, rule.fields[i]!);
    if (typeof own !== 'string' || own !== match[i + 1]) return false;
  }
  if (rule.roles === null) return true;
  const roles = field(assigns, 'roles');
  return Array.isArray(roles) && roles.some((role) => rule.roles!.has(role as string));
}
