const decoder = new TextDecoder();

/**
 * The JSON object a NATS message body holds, or null when the body is not JSON or not an object
 * (arrays and null included): the first check on every JSON message a peer may have forged.
 */
export function readJsonObject(data: Uint8Array): Record<string, unknown> | null {
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(data));
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  return body as Record<string, unknown>;
}
