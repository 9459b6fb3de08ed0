import {
  Empty,
  headers as natsHeaders,
  nuid,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import { InvalidArgumentError } from '../../errors.js';
import { H } from '../../nats/headers.js';
import { WorkerClosedError } from '../lifecycle.js';
import { EndpointStats, type EndpointStatsReport } from './endpoint-stats.js';

/** Where discovery requests arrive: `$SRV.<verb>`, `.<name>` and `.<name>.<id>`. */
const CONTROL_PREFIX = '$SRV';
type Verb = 'PING' | 'STATS' | 'INFO';
const RESPONSE_TYPE: Record<Verb, string> = {
  PING: 'io.nats.micro.v1.ping_response',
  STATS: 'io.nats.micro.v1.stats_response',
  INFO: 'io.nats.micro.v1.info_response',
};

/** A service's identity as discovery reports it. */
export interface MicroServiceConfig {
  /** Letters, digits, `_` and `-`. */
  readonly name: string;
  /** A semver version. */
  readonly version: string;
  readonly description: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** One endpoint: a subject (in a queue group, or '' for none) and what answers it. */
export interface MicroEndpoint {
  readonly subject: string;
  readonly queue: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Answers `msg`; reports its reply on `stats` (`stats.replied`) whenever it is sent. */
  readonly handler: (msg: Msg, stats: EndpointStats) => void;
}

interface Registered {
  readonly name: string;
  readonly endpoint: MicroEndpoint;
  readonly stats: EndpointStats;
  readonly sub: Subscription;
}

/** Replies `msg` with a micro service error (ADR-32): an empty body, the code and description headers. */
export function respondError(
  msg: Msg,
  code: number,
  description: string,
  headers: MsgHdrs = natsHeaders(),
): boolean {
  headers.set(H.serviceErrorCode, String(code));
  headers.set(H.serviceError, description);
  return msg.respond(Empty, { headers });
}

/** The same name check as the NATS Services API: `[-\w]+`. */
function checkName(context: string, name: string): void {
  if (name === '') throw new InvalidArgumentError(`${context} name required`);
  const bad = [...name].find((c) => !/^[-\w]$/.test(c));
  if (bad !== undefined)
    throw new InvalidArgumentError(
      `invalid ${context} name - ${context} name cannot contain '${bad}'`,
    );
}

/**
 * A NATS micro service (ADR-32, what `nats micro ls` and gateways' discovery see), kept by the SDK
 * rather than @nats-io/services: that library counts an endpoint's time only while its handler
 * runs synchronously and its errors only when the handler throws, while SDK handlers reply later.
 * Here each endpoint's statistics are the SDK's own (`EndpointStats`), told when a reply is sent.
 *
 * It answers `$SRV.PING|INFO|STATS` (all services, by name, by name and id), subscribes its
 * endpoints, and stops by itself (`stopped` settles with the error) when one of its subscriptions
 * ends without `stop()` — e.g. a permission violation — or when the connection closes (null).
 */
export class MicroService {
  /** This instance's id: what discovery reports and gateways address. */
  readonly id: string = nuid.next();
  /** When it started (ISO 8601), for `$SRV.STATS`. */
  private readonly started = new Date().toISOString();
  private readonly endpoints: Registered[] = [];
  private readonly control: Subscription[] = [];
  private stopping = false;
  private finish!: (error: Error | null) => void;
  /** Settles when the service stopped: null after `stop()` or a closed connection, else why. */
  readonly stopped: Promise<Error | null> = new Promise((resolve) => (this.finish = resolve));

  constructor(
    private readonly nc: NatsConnection,
    private readonly config: MicroServiceConfig,
  ) {
    checkName('name', config.name);
    // The same (loose) check as the Services API: three dot-separated numbers somewhere.
    if (!/(\d+).(\d+).(\d+)/.test(config.version))
      throw new InvalidArgumentError(`'${config.version}' is not a semver value`);
    nc.closed().then(
      () => this.close(null),
      (err: unknown) => this.close(err instanceof Error ? err : null),
    );
    const ping = JSON.stringify(this.identity('PING'));
    this.listenControl('PING', (msg) => msg.respond(ping));
    this.listenControl('STATS', (msg) => msg.respond(JSON.stringify(this.stats())));
    this.listenControl('INFO', (msg) => msg.respond(JSON.stringify(this.info())));
  }

  /** Subscribes an endpoint named `name` (reported by INFO and STATS); returns its statistics. */
  addEndpoint(name: string, endpoint: MicroEndpoint): EndpointStats {
    checkName('endpoint', name);
    const stats = new EndpointStats();
    const { subject, queue, handler } = endpoint;
    const sub = this.subscribe(subject, queue, (msg) => {
      stats.received();
      const startedAt = Date.now();
      try {
        handler(msg, stats);
      } catch (err) {
        // Handlers answer errors themselves: this is a defect, answered as the Services API would.
        const message = err instanceof Error ? err.message : String(err);
        stats.replied(startedAt, message);
        try {
          respondError(msg, 500, message);
        } catch {
          // The connection closed under us: nobody is left to answer.
        }
      }
    });
    this.endpoints.push({ name, endpoint, stats, sub });
    return stats;
  }

  /** Leaves discovery and every endpoint (draining their subscriptions); `stopped` settles. */
  stop(): Promise<Error | null> {
    this.close(null);
    return this.stopped;
  }

  /** Stops once: drains every subscription (unless the connection is closed), then settles. */
  private close(error: Error | null): void {
    if (this.stopping) return;
    this.stopping = true;
    const subs = [...this.endpoints.map((e) => e.sub), ...this.control];
    const drained = this.nc.isClosed() ? [] : subs.map((sub) => sub.drain());
    // allSettled never rejects.
    Promise.allSettled(drained).then(
      () => this.finish(error),
      () => this.finish(error),
    );
  }

  private identity(verb: Verb) {
    const { name, version, metadata } = this.config;
    return { type: RESPONSE_TYPE[verb], name, id: this.id, version, metadata };
  }

  private info() {
    const { type, name, id, version, metadata } = this.identity('INFO');
    return {
      type,
      name,
      id,
      version,
      description: this.config.description,
      metadata,
      endpoints: this.endpoints.map(({ name, endpoint }) => ({
        subject: endpoint.subject,
        metadata: endpoint.metadata,
        name,
        queue_group: endpoint.queue,
      })),
    };
  }

  private stats() {
    const { type, name, id, version, metadata } = this.identity('STATS');
    return {
      type,
      name,
      id,
      version,
      started: this.started,
      metadata,
      endpoints: this.endpoints.map(({ name, endpoint, stats }) =>
        stats.report(name, endpoint.subject, endpoint.queue),
      ) satisfies EndpointStatsReport[],
    };
  }

  /** Answers `verb` on its three subjects. */
  private listenControl(verb: Verb, answer: (msg: Msg) => void): void {
    const { name } = this.config;
    const guarded = (msg: Msg): void => {
      try {
        answer(msg);
      } catch {
        // The connection closed under us: nobody is left to answer.
      }
    };
    for (const subject of [
      `${CONTROL_PREFIX}.${verb}`,
      `${CONTROL_PREFIX}.${verb}.${name}`,
      `${CONTROL_PREFIX}.${verb}.${name}.${this.id}`,
    ])
      this.control.push(this.subscribe(subject, '', guarded));
  }

  /** A subscription the service needs: an error on it, or its end without `stop()`, stops it. */
  private subscribe(subject: string, queue: string, onMsg: (msg: Msg) => void): Subscription {
    const sub = this.nc.subscribe(subject, {
      queue,
      callback: (err, msg) => {
        if (err) this.close(err);
        else onMsg(msg);
      },
    });
    // It resolves (with the error, e.g. a permission violation, when there is one).
    const ended = (err: unknown): void => {
      if (this.stopping) return;
      this.close(
        new WorkerClosedError(
          err instanceof Error
            ? `required subscription ${subject} errored: ${err.message}`
            : `required subscription ${subject} stopped`,
          err instanceof Error ? { cause: err } : undefined,
        ),
      );
    };
    sub.closed.then(ended, ended);
    return sub;
  }
}
