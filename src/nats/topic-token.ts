/**
 * Phoenix topics as one NATS subject token (protocol/nats.md §9), lossless both ways.
 *
 * Most topics ("room:lobby", "users_socket:42") are already valid tokens and map to themselves,
 * so a backend in another language publishes to `<p>.topic.room:lobby` without encoding anything.
 * Any other topic (dots, wildcards, spaces, non-ASCII, a leading "~", empty) becomes "~" followed
 * by the base64url of its UTF-8 bytes: "~" never starts an identity token, so the two forms
 * cannot collide.
 *
 * Lossless and injective for well-formed strings. A topic holding a lone UTF-16 surrogate (JSON
 * can carry "\ud800") has no UTF-8 form: its token would alias another topic's, so the cluster
 * keeps such topics on each gateway (`isWellFormedTopic`).
 */
const IDENTITY = /^[A-Za-z0-9_:@!,+=/-]+$/;

/** The subject token for `topic`. */
export function topicToken(topic: string): string {
  if (IDENTITY.test(topic)) return topic;
  return `~${Buffer.from(topic, 'utf8').toString('base64url')}`;
}

/** The topic a token names, or null when the token is not one `topicToken` can produce. */
export function topicFromToken(token: string): string | null {
  if (IDENTITY.test(token)) return token;
  if (!token.startsWith('~')) return null;
  const body = token.slice(1);
  if (!/^[A-Za-z0-9_-]*$/.test(body)) return null;
  const topic = Buffer.from(body, 'base64url').toString('utf8');
  // Reject non-canonical forms (invalid UTF-8, padding bits, identity topics encoded).
  return topicToken(topic) === token ? topic : null;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** False when `topic` holds a lone surrogate: it has no UTF-8 form, so no token of its own. */
export function isWellFormedTopic(topic: string): boolean {
  return !LONE_SURROGATE.test(topic);
}
