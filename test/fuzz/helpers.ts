/** Small helpers shared by the fuzz and bad-input suites. */
import type { Gateway } from '../../src/index.js';
import { until } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';

/** What the gateway holds right now: sessions, channels, presences and topic subscriptions. */
export function footprint(gateway: Gateway): {
  sockets: number;
  channels: number;
  presences: number;
  subscriptions: number;
  topics: number;
} {
  return {
    sockets: gateway.stats.sockets,
    channels: gateway.stats.channels,
    presences: gateway.presence.size,
    subscriptions: gateway.pubsub.subscriberCount(),
    topics: gateway.pubsub.topicCount(),
  };
}

/** Waits until nothing is left: no sockets, channels, presences or subscriptions. */
export async function expectEmpty(gateway: Gateway, timeoutMs?: number): Promise<void> {
  await until(
    () => {
      const f = footprint(gateway);
      return (
        f.sockets === 0 &&
        f.channels === 0 &&
        f.presences === 0 &&
        f.subscriptions === 0 &&
        f.topics === 0
      );
    },
    () => `an empty gateway, have ${JSON.stringify(footprint(gateway))}`,
    timeoutMs,
  );
}

/** A fresh V2 client gets its heartbeat answered. */
export async function heartbeatWorks(url: string): Promise<void> {
  const client = await RawClient.connect(url);
  try {
    const reply = await client.request([null, 'hb-check', 'phoenix', 'heartbeat', {}]);
    if (
      JSON.stringify(reply) !==
      JSON.stringify([null, 'hb-check', 'phoenix', 'phx_reply', { status: 'ok', response: {} }])
    ) {
      throw new Error(`unexpected heartbeat reply ${JSON.stringify(reply)}`);
    }
  } finally {
    client.close();
    await client.closed;
  }
}
