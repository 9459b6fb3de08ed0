import { headers as natsHeaders, type Msg } from '@nats-io/nats-core';
import { H } from '../../nats/headers.js';
import type { PushAck, PushConfigMessage } from '../../nats/messages.js';
import { AUTH_HEADER, NONCE_HEADER, type PeerAuth } from '../../nats/peer-auth.js';
import { sleep } from '../../util/sleep.js';
import { json, replyHeaders, type ServeScope } from './scope.js';

/**
 * This instance's function configs towards the gateways (protocol/nats.md §7, §10): pushed to
 * every gateway (on start, on demand, and again after a reconnect until one acknowledges), and
 * answered to a gateway that pulls them. Signed with the push token when there is one.
 */
export class ConfigPublisher {
  /** Ends the retries of the latest push after a reconnect (a newer reconnect or the end). */
  private reconnectPush: AbortController | null = null;

  constructor(
    private readonly scope: ServeScope,
    private readonly auth: PeerAuth | null,
    private readonly pushTimeoutMs: number,
    private readonly reconnectRetryMs: readonly number[],
  ) {}

  /** The config message: every function's config, this instance and its versions. */
  message(): PushConfigMessage {
    const { definition, id } = this.scope;
    return {
      service: definition.name,
      config_version: definition.configVersion,
      fun_configs: [...definition.functions.values()].map((fn) => fn.config),
      instance_id: id,
      service_version: definition.version,
    };
  }

  /** Pushes the config to every gateway; `force` replaces even an equal config version. */
  async push(force = false): Promise<PushAck[]> {
    const { nc, subjects, definition, logger } = this.scope;
    const h = natsHeaders();
    if (force) h.set(H.force, 'true');
    const acks: PushAck[] = [];
    const subject = subjects.configPush(definition.name);
    const body = json(this.message());
    if (this.auth !== null) h.set(AUTH_HEADER, this.auth.signPush(subject, body));
    try {
      const replies = await nc.requestMany(subject, body, {
        strategy: 'timer',
        maxWait: this.pushTimeoutMs,
        headers: h,
      });
      for await (const reply of replies) {
        try {
          acks.push(JSON.parse(reply.string()) as PushAck);
        } catch {
          logger.warn('unreadable push acknowledgement');
        }
      }
    } catch (err) {
      // No gateway listening yet: they will pull the config when they discover this instance.
      logger.debug({ err: (err as Error).message }, 'config push not acknowledged');
    }
    for (const ack of acks) {
      if (ack.status === 'error')
        logger.error({ gateway: ack.gateway, ack }, 'config push refused');
      else if (ack.status === 'accepted' && ack.rejected.length > 0)
        logger.warn(
          { gateway: ack.gateway, rejected: ack.rejected },
          'config push partly rejected',
        );
    }
    return acks;
  }

  /** Answers a gateway's pull; signed for its nonce when both sides have the token. */
  answer(msg: Msg): void {
    const { scope, auth } = this;
    const body = json(this.message());
    const nonce = msg.headers?.get(NONCE_HEADER) ?? '';
    if (auth === null || nonce === '') {
      scope.send(() => msg.respond(body));
      return;
    }
    const signed = {
      headers: replyHeaders({ [AUTH_HEADER]: auth.signConfig(msg.subject, nonce, body) }),
    };
    scope.send(() => msg.respond(body, signed));
  }

  /**
   * Pushes again after a reconnect: gateways may have dropped this instance (or restarted)
   * meanwhile and need the config. They reconnect at their own pace, so a push nobody
   * acknowledged is tried again, a few times; a newer reconnect replaces these retries.
   */
  pushAfterReconnect(): void {
    const { logger } = this.scope;
    this.reconnectPush?.abort();
    const retries = new AbortController();
    this.reconnectPush = retries;
    const pushUntilAcknowledged = async (): Promise<number> => {
      for (const waitMs of [0, ...this.reconnectRetryMs]) {
        if (waitMs > 0) await sleep(waitMs, retries.signal);
        if (retries.signal.aborted) return 0;
        const acks = await this.push();
        if (acks.length > 0) return acks.length;
      }
      return 0;
    };
    pushUntilAcknowledged().then(
      (gateways) => {
        if (!retries.signal.aborted)
          logger.info({ gateways }, 'config pushed again after reconnect');
      },
      (err: unknown) => logger.warn({ err }, 'config push after reconnect failed'),
    );
  }

  /** Ends the retries after a reconnect (the service drains or stopped). */
  stopRetries(): void {
    this.reconnectPush?.abort();
  }
}
