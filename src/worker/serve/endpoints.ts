import type { Service, ServiceMsg } from '@nats-io/services';
import { ERROR_CODES, QUEUE_GROUP } from '../../nats/headers.js';
import type { ResolvedFunction } from '../define.js';
import type { ConfigPublisher } from './config-push.js';
import { endpointStats, type EndpointStats } from './endpoint-stats.js';
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
  service: Service,
  scope: ServeScope,
  requests: RequestHandler,
  config: ConfigPublisher,
): void {
  const { definition, subjects, id } = scope;
  let directStats: EndpointStats | null = null;
  const direct = new Map<string, (msg: ServiceMsg) => void>();
  for (const fn of definition.functions.values()) {
    const metadata: Record<string, string> = {
      request_type: fn.requestType,
      response_type: fn.config.response_type ?? 'sync',
    };
    if (fn.version !== null) metadata.version = fn.version;
    const name = endpointName(fn);
    service.addEndpoint(name, {
      subject: subjects.fn(definition.name, fn.requestType, fn.version),
      queue: QUEUE_GROUP,
      metadata,
      handler: (_err, msg) => requests.call(fn, msg, fnStats),
    });
    const fnStats = endpointStats(service, name);
    direct.set(subjects.instanceFn(definition.name, id, fn.requestType, fn.version), (msg) =>
      requests.call(fn, msg, directStats),
    );
    if (fn.definition.authorize) {
      service.addEndpoint(`${name}-permission`, {
        subject: subjects.perm(definition.name, fn.requestType, fn.version),
        queue: QUEUE_GROUP,
        metadata: { ...metadata, kind: 'permission' },
        handler: (_err, msg) => requests.authorize(fn, msg, permStats),
      });
      const permStats = endpointStats(service, `${name}-permission`);
      direct.set(subjects.instancePerm(definition.name, id, fn.requestType, fn.version), (msg) =>
        requests.authorize(fn, msg, directStats),
      );
    }
  }
  service.addEndpoint('config', {
    subject: subjects.configGet(definition.name),
    queue: QUEUE_GROUP,
    handler: (_err, msg) => config.answer(msg),
  });
  direct.set(subjects.instanceConfig(definition.name, id), (msg) => config.answer(msg));
  service.addEndpoint('direct', {
    subject: subjects.instanceWildcard(definition.name, id),
    handler: (_err, msg) => {
      const handler = direct.get(msg.subject);
      if (handler) handler(msg);
      else
        scope.fail(
          msg,
          directStats,
          Date.now(),
          ERROR_CODES.notFound,
          `no such function on this instance: ${msg.subject}`,
        );
    },
  });
  directStats = endpointStats(service, 'direct');
}
