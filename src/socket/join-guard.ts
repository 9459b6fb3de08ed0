import { error, type Assigns, type Channel, type ChannelHandler } from '../channel/types.js';
import type { JoinAuthorizer } from '../config/socket-options.js';

/**
 * `handler` with `authorize` run before its `join`: a refusal answers the join with
 * `{"reason": reason}` and the handler never sees it. The handler's other callbacks (and `this`)
 * are its own: the guard only shadows `join`.
 */
export function guardJoin<A extends Assigns>(
  handler: ChannelHandler<A>,
  authorize: JoinAuthorizer,
): ChannelHandler<A> {
  const guarded = Object.create(handler) as ChannelHandler<A>;
  guarded.join = async (topic: string, payload: unknown, channel: Channel<A>) => {
    const verdict = await authorize(topic, payload, channel.socket.assigns);
    if (verdict !== true) return error({ reason: verdict.reason });
    return handler.join(topic, payload, channel);
  };
  return guarded;
}
