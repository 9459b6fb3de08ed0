/**
 * The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers -10/-11) for HTTP
 * surfaces: `RateLimit-Policy: "name";q=<quota>;w=<window s>`, `RateLimit: "name";r=<remaining>;t=<s>`
 * and, on 429, `Retry-After` (never earlier than t).
 */
export interface LimitState {
  readonly policy: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly remaining: number;
  readonly resetMs: number;
  readonly retryAfterMs: number;
}

const seconds = (ms: number): number => Math.max(0, Math.ceil(ms / 1000));

/** Structured Field string: quotes and backslashes escaped. */
function sfString(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function rateLimitHeaders(state: LimitState, denied: boolean): Record<string, string> {
  const name = sfString(state.policy);
  const t = seconds(denied ? Math.max(state.resetMs, state.retryAfterMs) : state.resetMs);
  const headers: Record<string, string> = {
    'RateLimit-Policy': `${name};q=${state.limit};w=${Math.max(1, seconds(state.windowMs))}`,
    RateLimit: `${name};r=${Math.max(0, state.remaining)};t=${t}`,
  };
  if (denied) headers['Retry-After'] = String(Math.max(1, t, seconds(state.retryAfterMs)));
  return headers;
}
