import type { Gateway } from '../gateway.js';
import { defineChannel, error, ok } from '../channel/types.js';
import type { ConnectHook } from '../socket/connect.js';

/** Demo identity: taken from connect params, which any client can forge. Dev only. */
export interface DemoAssigns {
  user_id: string | null;
  device_id: string | null;
}

export const demoConnect: ConnectHook<DemoAssigns> = ({ params }) => {
  const user = typeof params.user_id === 'string' && params.user_id !== '' ? params.user_id : null;
  const device =
    typeof params.device_id === 'string' && params.device_id !== '' ? params.device_id : null;
  return {
    assigns: { user_id: user, device_id: device },
    id: user === null ? null : `user:${user}`,
  };
};

/**
 * `room:*`: a small chat room showing the channel API. Join with `{name}`; `shout` broadcasts
 * `{from, body}`, `echo` replies with the payload; presence lists who is in the room.
 */
export function demoRoomChannel(gateway: Gateway) {
  return defineChannel<DemoAssigns & { name?: string }>({
    join(_topic, payload, channel) {
      const name = (payload as { name?: unknown } | null)?.name ?? channel.socket.assigns.user_id;
      if (typeof name !== 'string' || name === '') return error({ reason: 'name required' });
      channel.assign({ name });
      return ok({ topic: channel.topic });
    },
    afterJoin(channel) {
      channel.push('presence_state', gateway.presence.list(channel.topic));
      gateway.presence.track(channel, channel.assigns.name!, { online_at: Date.now() });
    },
    handleIn(event, payload, channel) {
      switch (event) {
        case 'shout':
          channel.broadcast('shout', {
            from: channel.assigns.name,
            body: (payload as { body?: unknown })?.body ?? null,
          });
          return ok();
        case 'echo':
          return ok(payload);
        default:
          return error({ reason: `unknown event ${event}` });
      }
    },
  });
}
