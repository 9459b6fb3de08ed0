import type { Msg } from '@nats-io/nats-core';
import { ERROR_CODES, QUEUE_GROUP } from '../../nats/headers.js';
import type { ResolvedFunction } from '../define.js';
import type { ConfigPublisher } from './config-push.js';
import type { EndpointStats } from './endpoint-stats.js';
import type { MicroService } from './micro-service.js';
import type { RequestHandler } from './requests.js';
import type { ServeScope } from './scope.js';

/** The endpoint name of a function: its request type, `-v<version>` when versioned. */
function endpointName(fn: ResolvedFunction): string {
  const base = fn.version === null ? fn.requestType : `${fn.requestType}-v${fn.version}`;
  return base.replace(/[^-\w]/g, '_');
}

/**
 * Queue-group endpoints: functions, permission checks, config. Requests to this very instance
 * arrive on the `direct` endpoint and are accounted there.
 */
export function addEndpoints(
  service: MicroService,
  scope: ServeScope,
  requests: RequestHandler,
  config: ConfigPublisher,
): void {
  const { definition, subjects, id } = scope;
  /** The handlers of the direct endpoint, by subject. */
  const direct = new Map<string, (msg: Msg, stats: EndpointStats) => void>();
  for (const fn of definition.functions.values()) {
    const metadata: Record<string, string> = {
      request_type: fn.requestType,
      response_type: fn.config.response_type ?? 'sync',
    };
    if (fn.version !== null) metadata.version = fn.version;
    const name = endpointName(fn);
    const call = (msg: Msg, stats: EndpointStats) => requests.call(fn, msg, stats);
    service.addEndpoint(name, {
      subject: subjects.fn(definition.name, fn.requestType, fn.version),
      queue: QUEUE_GROUP,
      metadata,
      handler: call,
    });
    direct.set(subjects.instanceFn(definition.name, id, fn.requestType, fn.version), call);
    if (fn.definition.authorize) {
      const authorize = (msg: Msg, stats: EndpointStats) => requests.authorize(fn, msg, stats);
      service.addEndpoint(`${name}-permission`, {
        subject: subjects.perm(definition.name, fn.requestType, fn.version),
        queue: QUEUE_GROUP,
        metadata: { ...metadata, kind: 'permission' },
        handler: authorize,
      });
      direct.set(subjects.instancePerm(definition.name, id, fn.requestType, fn.version), authorize);
    }
  }
  // Answered at once: its time is nil, its request counted on arrival.
  const answerConfig = (msg: Msg) => config.answer(msg);
  service.addEndpoint('config', {
    subject: subjects.configGet(definition.name),
    queue: QUEUE_GROUP,
    handler: answerConfig,
  });
  direct.set(subjects.instanceConfig(definition.name, id), answerConfig);
  service.addEndpoint('direct', {
    subject: subjects.instanceWildcard(definition.name, id),
    queue: '',
    handler: (msg, stats) => {
      const handler = direct.get(msg.subject);
      if (handler) handler(msg, stats);
      else
        scope.fail(
          msg,
          stats,
          Date.now(),
          ERROR_CODES.notFound,
          `no such function on this instance: ${msg.subject}`,
        );
    },
  });
}
