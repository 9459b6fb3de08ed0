/** The authentication family of the gateway's metrics (config `auth`), read when scraped. */
import type { Registry } from 'prom-client';
import type { AuthStats } from '../auth/connect.js';
import { readCounter } from './read-at-scrape.js';

/** Registers `<p>auth_connects_total`. */
export function registerAuthMetrics(registry: Registry, p: string, auth: AuthStats): void {
  readCounter(
    registry,
    {
      name: `${p}auth_connects_total`,
      help: 'Connects decided by the config authentication: accepted, or refused by reason.',
      labelNames: ['strategy', 'result', 'reason'],
    },
    (set) => {
      set({ strategy: auth.strategy, result: 'accepted', reason: '' }, auth.accepted);
      for (const [reason, count] of Object.entries(auth.refused))
        set({ strategy: auth.strategy, result: 'refused', reason }, count);
    },
  );
}
