/**
 * NATS subjects of the gen_api protocol (protocol/nats.md §Subjects). Every subject starts with
 * a prefix (default "genapi") so several deployments can share a NATS account.
 */
export const DEFAULT_PREFIX = 'genapi';

/** Versions become one subject token: dots are not allowed inside a token. */
export function versionToken(version: string): string {
  return version.replace(/\./g, '_');
}

function fnPath(service: string, requestType: string, version: string | null): string {
  return version === null
    ? `${service}.${requestType}`
    : `${service}.${requestType}.${versionToken(version)}`;
}

export class Subjects {
  constructor(readonly prefix: string = DEFAULT_PREFIX) {}

  /** A function, any instance (queue group). */
  fn(service: string, requestType: string, version: string | null): string {
    return `${this.prefix}.fn.${fnPath(service, requestType, version)}`;
  }

  /** A function's permission check, any instance (queue group). */
  perm(service: string, requestType: string, version: string | null): string {
    return `${this.prefix}.perm.${fnPath(service, requestType, version)}`;
  }

  /** A service's config (PushConfig), any instance (queue group). */
  configGet(service: string): string {
    return `${this.prefix}.config.get.${service}`;
  }

  /**
   * A service's config pushes: every gateway subscribes to `configPushWildcard` (no queue group).
   * One subject per service, so a NATS permission can let a worker push for its own service only.
   */
  configPush(service: string): string {
    return `${this.prefix}.config.push.${service}`;
  }

  /** Every service's config pushes (what gateways subscribe to). */
  get configPushWildcard(): string {
    return `${this.prefix}.config.push.*`;
  }

  /**
   * Everything addressed to one instance: `<prefix>.inst.<service>.<id>.>`. The service comes
   * first so a NATS permission `<prefix>.inst.<service>.>` scopes a worker to its own service.
   */
  instanceWildcard(service: string, instanceId: string): string {
    return `${this.prefix}.inst.${service}.${instanceId}.>`;
  }

  instanceFn(
    service: string,
    instanceId: string,
    requestType: string,
    version: string | null,
  ): string {
    return `${this.prefix}.inst.${service}.${instanceId}.fn.${fnPath(service, requestType, version)}`;
  }

  instancePerm(
    service: string,
    instanceId: string,
    requestType: string,
    version: string | null,
  ): string {
    return `${this.prefix}.inst.${service}.${instanceId}.perm.${fnPath(service, requestType, version)}`;
  }

  instanceConfig(service: string, instanceId: string): string {
    return `${this.prefix}.inst.${service}.${instanceId}.config`;
  }

  /** Stream control (credit, cancel) for one stream of one instance of `service`. */
  streamControl(service: string, instanceId: string, streamId: string): string {
    return `${this.prefix}.ctl.${service}.${instanceId}.${streamId}`;
  }

  /** What every stream control subject of `service` starts with. */
  streamControlPrefix(service: string): string {
    return `${this.prefix}.ctl.${service}.`;
  }

  streamControlWildcard(service: string, instanceId: string): string {
    return `${this.prefix}.ctl.${service}.${instanceId}.*`;
  }

  /** Stream chunks for one stream of one gateway. */
  streamData(gatewayId: string, streamId: string): string {
    return `${this.prefix}.gw.${gatewayId}.s.${streamId}`;
  }

  streamDataWildcard(gatewayId: string): string {
    return `${this.prefix}.gw.${gatewayId}.s.*`;
  }

  /** Rate limiting, eventual mode: batches of hits every gateway publishes and reads. */
  get rlHits(): string {
    return `${this.prefix}.rl.hits`;
  }

  /** Rate limiting: gateway heartbeats (membership, last published batch). */
  get rlNode(): string {
    return `${this.prefix}.rl.node`;
  }

  /** Rate limiting: a joining gateway asks every peer for its recent batches. */
  get rlSync(): string {
    return `${this.prefix}.rl.sync`;
  }

  /** Rate limiting: ask one gateway for batches another missed (a gap in its sequence). */
  rlReplay(gatewayId: string): string {
    return `${this.prefix}.rl.replay.${gatewayId}`;
  }

  /** Rate limiting: policy changes made through one gateway's admin API, applied by all. */
  get rlPolicy(): string {
    return `${this.prefix}.rl.policy`;
  }

  /**
   * Broadcasts to one Phoenix topic (cluster PubSub, worker pushes): every gateway with local
   * subscribers of the topic subscribes. `token` is `topicToken(topic)` (topic-token.ts).
   */
  topic(token: string): string {
    return `${this.prefix}.topic.${token}`;
  }

  /** Closes every socket with an id, on every gateway (Phoenix's "disconnect" to users_socket:<id>). */
  get socketDisconnect(): string {
    return `${this.prefix}.socket.disconnect`;
  }

  /** Presence replication between gateways: each node's clocked deltas (every gateway subscribes). */
  get presenceDelta(): string {
    return `${this.prefix}.presence.delta`;
  }

  /** Presence replication: node heartbeats (membership, last delta clock) and goodbyes. */
  get presenceHeartbeat(): string {
    return `${this.prefix}.presence.hb`;
  }

  /** Presence replication: ask one node for its entries (state transfer). */
  presenceSync(nodeId: string): string {
    return `${this.prefix}.presence.sync.${nodeId}`;
  }

  /** A topic's cluster-wide presence, for workers and tools (queue group: one gateway answers). */
  get presenceGet(): string {
    return `${this.prefix}.presence.get`;
  }

  /**
   * Authentication by a worker (protocol/nats.md §11): a gateway asks the auth service `service`
   * whether a connecting client may connect (any instance: queue group).
   */
  authConnect(service: string): string {
    return `${this.prefix}.auth.${service}.connect`;
  }

  /** Authentication by a worker: whether a socket may join a topic (queue group). */
  authJoin(service: string): string {
    return `${this.prefix}.auth.${service}.join`;
  }

  /** Relay groups across gateways: everything addressed to the group's owner node. */
  relayGroup(token: string): string {
    return `${this.prefix}.relay.group.${token}`;
  }

  /** Relay groups: a gateway answers here while alive (owners check the nodes of their members). */
  relayNode(token: string): string {
    return `${this.prefix}.relay.node.${token}`;
  }
}
