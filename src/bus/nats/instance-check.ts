import type { NatsConnection } from '@nats-io/nats-core';
import { AUTH_METADATA, type PeerAuth } from '../../nats/peer-auth.js';

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/** What a `$SRV.PING` answer says about an instance (checked before it is believed). */
export interface AnnouncedInstance {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly configVersion: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** Why an announced instance was not admitted. */
export type InstanceRefusal = 'unsigned' | 'bad_signature' | 'not_reachable' | 'mismatch';

/**
 * Checks an instance announced on `$SRV.PING` before discovery admits it (protocol/nats.md §10):
 *
 * 1. With a push token, its metadata must carry the proof for its name, version and config
 *    version: an instance without the token cannot announce a newer deployment and take the
 *    service's routing and config over.
 * 2. It must answer on `$SRV.PING.<name>.<id>`. Anyone may answer the broadcast `$SRV.PING` with
 *    any name, but only a client allowed to subscribe to that service's subjects receives this
 *    one, so NATS permissions (examples/secure) decide who may be an instance of a service.
 *
 * Null when admitted.
 */
export async function checkInstance(
  nc: NatsConnection,
  instance: AnnouncedInstance,
  auth: PeerAuth | null,
  timeoutMs: number,
): Promise<InstanceRefusal | null> {
  // Names and ids become subject tokens; NATS micro allows only these characters in either.
  if (!TOKEN.test(instance.name) || !TOKEN.test(instance.id)) return 'mismatch';
  if (auth !== null) {
    const failure = auth.verifyInstance(
      instance.name,
      instance.version,
      instance.configVersion ?? '',
      instance.metadata[AUTH_METADATA],
    );
    if (failure === 'unsigned' || failure === 'bad_signature') return failure;
  }
  try {
    const reply = await nc.request(`$SRV.PING.${instance.name}.${instance.id}`, undefined, {
      timeout: timeoutMs,
    });
    const answer = JSON.parse(reply.string()) as { id?: unknown; name?: unknown };
    return answer.id === instance.id && answer.name === instance.name ? null : 'mismatch';
  } catch {
    return 'not_reachable';
  }
}
