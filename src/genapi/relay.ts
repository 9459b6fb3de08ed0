import type { Channel } from '../channel/types.js';
import { defineService, fn, type ServiceDefinition } from '../worker/define.js';
import type { RequestContext } from '../worker/context.js';
import type { RelayGroups } from './relay/groups.js';
import { fail } from './relay/state.js';

export { RelayGroups, RELAY_DEFAULTS, type RelayOptions, type RelayStats } from './relay/groups.js';
export { RELAY_ERRORS, type GroupType, type MemberRole, type MemberStatus } from './relay/state.js';

function caller(ctx: RequestContext): string {
  if (ctx.userId === null) fail('Authentication required', 401);
  return ctx.userId;
}

/** Maps a result that is there now (group owned here) or later (owned by another gateway). */
function after<T, R>(value: T | Promise<T>, next: (value: T) => R): R | Promise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

function originChannel(ctx: RequestContext): Channel | null {
  const origin = ctx.origin as Channel | undefined;
  return origin && typeof origin.push === 'function' && origin.signal instanceof AbortSignal
    ? origin
    : null;
}

/** Relay groups as an in-process gen_api service (register with `genApi.register`). */
export function relayService(relay: RelayGroups, name = relay.service): ServiceDefinition {
  return defineService({
    name,
    version: '1.0.0',
    description: 'relay groups (across gateways with a cluster)',
    functions: {
      create_group: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', type: { type: 'string', default_value: 'public' } },
        handler: ({ group_id, type }, ctx) =>
          after(relay.create(group_id, type, caller(ctx), originChannel(ctx)), () => ({
            group_id,
            type,
          })),
      }),
      join_group: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string' },
        handler: ({ group_id }, ctx) =>
          after(relay.join(group_id, caller(ctx), originChannel(ctx)), (status) => ({
            group_id,
            status,
          })),
      }),
      leave_group: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string' },
        handler: ({ group_id }, ctx) =>
          after(relay.leave(group_id, caller(ctx)), () => ({ group_id })),
      }),
      accept_member: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', user_id: 'string' },
        handler: ({ group_id, user_id }, ctx) =>
          after(relay.accept(group_id, caller(ctx), user_id), () => ({
            group_id,
            user_id,
            status: 'active',
          })),
      }),
      mute_member: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', user_id: 'string' },
        handler: ({ group_id, user_id }, ctx) =>
          after(relay.mute(group_id, caller(ctx), user_id, true), () => ({
            group_id,
            user_id,
            status: 'muted',
          })),
      }),
      unmute_member: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', user_id: 'string' },
        handler: ({ group_id, user_id }, ctx) =>
          after(relay.mute(group_id, caller(ctx), user_id, false), () => ({
            group_id,
            user_id,
            status: 'active',
          })),
      }),
      delete_group: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string' },
        handler: ({ group_id }, ctx) =>
          after(relay.delete(group_id, caller(ctx)), () => ({ group_id })),
      }),
      group_info: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string' },
        handler: ({ group_id }, ctx) => relay.info(group_id, caller(ctx)),
      }),
      relay: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', message: 'any' },
        handler: ({ group_id, message }, ctx) =>
          relay.relay(group_id, caller(ctx), ctx.requestId, message),
      }),
    },
  });
}
