/**
 * A chat server on gen-gateway: token auth in the connect hook, a `room:*` channel with
 * presence, and an intercepted event filtered per subscriber.
 *
 *   npx tsx examples/chat/server.ts            # listens on 127.0.0.1:4000 (PORT to change)
 *   npx tsx examples/chat/client.ts alice      # in another terminal
 */
import { createGateway, defineChannel, error, ok, refuse } from 'gen-gateway';

interface User {
  userId: string;
  muted: readonly string[];
}

// Stand-in for real token verification (JWT, a session store, ...).
const TOKENS: Record<string, string> = {
  'alice-secret': 'alice',
  'bob-secret': 'bob',
  'carol-secret': 'carol',
};

const gateway = createGateway({ port: Number(process.env.PORT ?? 4000) });

const RoomChannel = defineChannel<User>({
  join(topic, _payload, channel) {
    if (topic === 'room:admins' && channel.socket.assigns.userId !== 'alice')
      return error({ reason: 'unauthorized' });
    return ok({ you: channel.socket.assigns.userId });
  },

  // Runs after the join reply: send who is here, then announce ourselves.
  afterJoin(channel) {
    channel.push('presence_state', gateway.presence.list(channel.topic));
    gateway.presence.track(channel, channel.assigns.userId, { online_at: Date.now() });
  },

  handleIn(event, payload, channel) {
    if (event === 'new_msg') {
      const body = (payload as { body?: unknown }).body;
      if (typeof body !== 'string' || body.length === 0)
        return error({ reason: 'body must be a non-empty string' });
      channel.broadcast('new_msg', { from: channel.assigns.userId, body });
      return ok();
    }
    if (event === 'mute') {
      const who = String((payload as { user?: unknown }).user);
      channel.assign({ muted: [...channel.assigns.muted, who] });
      return ok({ muted: channel.assigns.muted });
    }
    return error({ reason: `unknown event ${event}` });
  },

  // new_msg goes through handleOut for each subscriber, so each one can filter it.
  intercept: ['new_msg'],
  handleOut(event, payload, channel) {
    if (!channel.assigns.muted.includes((payload as { from: string }).from))
      channel.push(event, payload);
  },

  terminate(reason, channel) {
    gateway.logger.info(
      { user: channel.assigns.userId, topic: channel.topic, reason: reason.kind },
      'left',
    );
  },
});

gateway
  .socket<User>('/socket', {
    connect({ authToken }) {
      const userId = TOKENS[authToken ?? ''];
      if (!userId) return refuse(403, 'invalid token');
      return { assigns: { userId, muted: [] }, id: `user:${userId}` };
    },
    checkOrigin: ['//localhost', '//127.0.0.1'],
  })
  .channel('room:*', RoomChannel);

await gateway.listen(Number(process.env.PORT ?? 4000), process.env.HOST ?? '127.0.0.1');

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('gateway did not close cleanly', err);
        process.exit(1);
      },
    );
  });
}
