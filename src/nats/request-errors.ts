import { NoRespondersError, RequestError } from '@nats-io/nats-core';

/**
 * Whether a NATS request failed because nothing subscribes to its subject: nats.js throws a
 * NoRespondersError as is from requestMany's iterator, or as the cause of a RequestError from
 * request(). Classes first; then
 * names, because a connection from another copy of nats-core (a worker's own `nc`) throws that
 * copy's classes.
 */
export function isNoResponders(err: unknown): boolean {
  if (err instanceof NoRespondersError) return true;
  if (err instanceof RequestError && err.isNoResponders()) return true;
  if (!(err instanceof Error)) return false;
  if (err.name === 'NoRespondersError') return true;
  const check = (err as { isNoResponders?: unknown }).isNoResponders;
  if (typeof check === 'function' && check.call(err) === true) return true;
  return err.cause instanceof Error && err.cause.name === 'NoRespondersError';
}
