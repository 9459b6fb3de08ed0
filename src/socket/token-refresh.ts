import type { Assigns } from '../channel/types.js';
import type { InboundMessage } from '../wire/message.js';
import { EMPTY } from './session-context.js';
import type { Session } from './session.js';

/** The event a client pushes on the `phoenix` topic to give its socket a fresh token. */
export const ACCESS_TOKEN = 'access_token';

/**
 * A new token pushed by the client: checked like the connect's, it moves the socket's expiry.
 * Frames behind it wait (as behind a join), so a message sent after a refresh is never judged
 * under the old expiry.
 */
export async function refreshToken<A extends Assigns>(
  session: Session<A>,
  message: InboundMessage,
): Promise<void> {
  const token = (message.payload as { access_token?: unknown } | null)?.access_token;
  let verdict: { expiresAt: number | null } | { reason: string };
  if (typeof token !== 'string' || token === '') verdict = { reason: 'access_token required' };
  else {
    try {
      verdict = await session.ctx.refreshToken!(token, session.assigns);
    } catch (err) {
      session.logger.error({ err, id: session.id }, 'token refresh failed');
      verdict = { reason: 'refresh failed' };
    }
  }
  if (session.closed) return;
  if ('reason' in verdict) {
    session.writeReplyFrame(null, message.ref, message.topic, 'error', { reason: verdict.reason });
    return;
  }
  session.extendExpiry(verdict.expiresAt);
  session.writeReplyFrame(null, message.ref, message.topic, 'ok', EMPTY);
}
