/**
 * The `Sec-WebSocket-Protocol` offer of a Phoenix client: `phoenix` plus, when the client has an
 * `authToken`, one `base64url.bearer.phx.<base64 token>` entry (standard base64 without padding,
 * despite the name). Both base64 alphabets are accepted, with or without padding.
 */
export const AUTH_TOKEN_PREFIX = 'base64url.bearer.phx.';
export const PHOENIX_SUBPROTOCOL = 'phoenix';

export interface SubprotocolOffer {
  /** The decoded auth token, or null when none (or an undecodable one) was offered. */
  readonly authToken: string | null;
  /** The subprotocol to echo, or null when the client offered none. */
  readonly selected: string | null;
  /** True when the client offered subprotocols and none of them is allowed (→ HTTP 403). */
  readonly rejected: boolean;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Decodes standard or url-safe base64, padded or not; null when the text is not base64. */
export function decodeBase64(text: string): Buffer | null {
  if (!BASE64.test(text)) return null;
  const bare = text.replace(/=+$/, '');
  if (bare.length % 4 === 1) return null;
  return Buffer.from(bare, 'base64');
}

/** A token sent through btoa(): Latin-1 reverses it, as btoa treats each character as one byte. */
export function decodeBase64Token(text: string): string | null {
  return decodeBase64(text)?.toString('latin1') ?? null;
}

/**
 * Reads the offer. With `extractToken` off, a token entry is still removed from the offer (so it
 * never causes a 403) but its value is ignored.
 */
export function readSubprotocols(
  header: string | undefined,
  allowed: readonly string[],
  extractToken: boolean,
): SubprotocolOffer {
  if (header === undefined || header.trim() === '')
    return { authToken: null, selected: null, rejected: false };
  const offers = header
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const tokenOffers = offers.filter((entry) => entry.startsWith(AUTH_TOKEN_PREFIX));
  let remaining = offers;
  let authToken: string | null = null;
  if (tokenOffers.length === 1) {
    remaining = offers.filter((entry) => !entry.startsWith(AUTH_TOKEN_PREFIX));
    if (extractToken)
      authToken = decodeBase64Token(tokenOffers[0]!.slice(AUTH_TOKEN_PREFIX.length));
  }
  if (remaining.length === 0) return { authToken, selected: null, rejected: false };
  const selected =
    remaining.find((entry) => entry === PHOENIX_SUBPROTOCOL || allowed.includes(entry)) ?? null;
  return { authToken, selected, rejected: selected === null };
}
