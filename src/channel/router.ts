import { defineChannel, error, type Assigns, type ChannelHandler } from './types.js';
import { InvalidArgumentError } from '../errors.js';

interface Route<A extends Assigns> {
  readonly pattern: string;
  readonly prefix: string | null;
  readonly handler: ChannelHandler<A>;
}

/**
 * Topic patterns → channel handlers, matched in declaration order like Phoenix's `channel`
 * macro: a trailing `*` matches any topic with that prefix (`room:*`, or `*` for everything);
 * anything else must match exactly.
 */
export class ChannelRouter<A extends Assigns = Assigns> {
  private readonly routes: Route<A>[] = [];
  /** Joins of a longer topic are refused before any handler runs (`SocketOptions.maxTopicBytes`). */
  private readonly tooLong: ChannelHandler<A>;

  constructor(readonly maxTopicBytes: number = Number.POSITIVE_INFINITY) {
    const refusal = { reason: `topic too long (max ${maxTopicBytes} bytes)` };
    this.tooLong = defineChannel<A>({ join: () => error(refusal) });
  }

  add(pattern: string, handler: ChannelHandler<A>): void {
    if (typeof pattern !== 'string' || pattern === '')
      throw new InvalidArgumentError('channel pattern must be a non-empty string');
    const star = pattern.indexOf('*');
    if (star >= 0 && star !== pattern.length - 1) {
      throw new InvalidArgumentError(
        `channel pattern ${JSON.stringify(pattern)}: "*" is only allowed at the end`,
      );
    }
    if (typeof handler?.join !== 'function') {
      throw new InvalidArgumentError(
        `channel ${JSON.stringify(pattern)}: the handler needs a join() function`,
      );
    }
    if (handler.intercept && !handler.handleOut) {
      throw new InvalidArgumentError(
        `channel ${JSON.stringify(pattern)}: intercept needs a handleOut() function`,
      );
    }
    this.routes.push({ pattern, prefix: star >= 0 ? pattern.slice(0, -1) : null, handler });
  }

  /** The handler for `topic`; a topic over maxTopicBytes gets one that refuses every join. */
  match(topic: string): ChannelHandler<A> | null {
    // UTF-8 is at most 3 bytes per UTF-16 unit: only long topics pay for the exact count.
    if (topic.length * 3 > this.maxTopicBytes && Buffer.byteLength(topic) > this.maxTopicBytes)
      return this.tooLong;
    for (const route of this.routes) {
      if (route.prefix === null ? topic === route.pattern : topic.startsWith(route.prefix))
        return route.handler;
    }
    return null;
  }

  get patterns(): string[] {
    return this.routes.map((route) => route.pattern);
  }
}
