import { defineChannel, error, ok, type ChannelHandler } from '../channel/types.js';
import type { ViewerAssigns } from './access.js';
import type { DashboardHub } from './hub.js';

/** The dashboard's topic on its socket mount. */
export const DASHBOARD_TOPIC = 'admin:dashboard';

/**
 * `admin:dashboard`: joining makes the socket a viewer (the join reply carries the first snapshot,
 * then a `snapshot` push every interval); leaving or disconnecting stops it. Clients send nothing
 * else. Who may connect was decided by the mount's connect hook (src/dashboard/access.ts).
 * Contract: protocol/dashboard.md.
 */
export function dashboardChannel(hub: DashboardHub): ChannelHandler<ViewerAssigns> {
  return defineChannel<ViewerAssigns>({
    join(topic, _payload, channel) {
      if (topic !== DASHBOARD_TOPIC) return error({ reason: 'unmatched topic' });
      return ok(hub.add(channel));
    },
    handleIn(event) {
      return error({ reason: `unknown event ${event}` });
    },
    terminate(_reason, channel) {
      hub.remove(channel);
    },
  });
}
