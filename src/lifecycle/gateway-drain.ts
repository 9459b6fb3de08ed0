/**
 * The steps of `gateway.drain()` (gateway.ts checks the options and runs this once): stop
 * accepting, wait for in-flight work up to its deadline, close the sockets in batches, wait for
 * their close handshakes, then close the gateway.
 */
import type { Assigns } from '../channel/types.js';
import type { Logger } from '../log/logger.js';
import { CLOSE } from '../socket/session.js';
import type { SocketMount } from '../socket/mount.js';
import type { GatewayStats } from '../socket/stats.js';
import type { SocketDrainEvent } from '../telemetry/events.js';
import { withDeadline } from '../util/deadline.js';
import { closeInBatches, type DrainOptions } from './drain.js';

/**
 * @internal Work a drain waits for before closing sockets (gen_api's in-flight requests): `idle`
 * resolves once none is left; `cut` ends what still runs at the deadline and says how much.
 */
export interface DrainParticipant {
  idle(): Promise<void>;
  cut(): number;
}

/** The parts of a gateway a drain works on. */
export interface DrainTarget {
  readonly mounts: readonly SocketMount<Assigns>[];
  readonly participants: readonly DrainParticipant[];
  readonly logger: Logger;
  readonly stats: GatewayStats;
  /** One batch of sockets closed (logged and emitted as `socket_drain`). */
  socketDrained(event: SocketDrainEvent): void;
  /** The gateway's `close()`, the drain's last step. */
  close(): Promise<void>;
}

/**
 * Runs a drain with resolved `settings`; `closeHandshakeWaitMs` bounds the wait for clients to
 * answer the close. `hurry` (aborted by `close()`) skips the remaining waits.
 */
export async function runDrain(
  target: DrainTarget,
  settings: Required<DrainOptions>,
  closeHandshakeWaitMs: number,
  hurry: AbortSignal,
): Promise<void> {
  for (const mount of target.mounts) mount.stopAccepting();
  target.logger.info(
    { ...settings, sockets: target.stats.sockets },
    'draining: refusing new connections, waiting for in-flight requests',
  );
  const idle = Promise.all(target.participants.map((p) => p.idle())).then(() => true);
  const finished = await withDeadline(idle, settings.requestDeadlineMs, () => false, hurry);
  if (!finished) {
    let cut = 0;
    for (const participant of target.participants) cut += participant.cut();
    target.logger.warn(
      { deadlineMs: settings.requestDeadlineMs, streamsInterrupted: cut },
      'drain: request deadline reached; closing sockets with requests still running',
    );
  }
  const sessions = target.mounts.flatMap((mount) => mount.openSessions());
  await closeInBatches(
    sessions,
    settings,
    CLOSE.drain,
    'server shutting down',
    (event) => target.socketDrained(event),
    hurry,
  );
  await withDeadline(
    Promise.all(target.mounts.map((mount) => mount.whenEmpty())),
    closeHandshakeWaitMs,
    () => undefined,
    hurry,
  );
  await target.close();
}
