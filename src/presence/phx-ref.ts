import { randomBytes } from 'node:crypto';

/**
 * Presence refs in Phoenix.Tracker's format: 16 characters of url-safe base64 over 12 bytes —
 * a 48-bit millisecond timestamp, 16 bits of node identity and a 32-bit counter — so refs are
 * unique across gateway nodes and opaque to clients.
 */
export class PhxRefGenerator {
  private counter = 0;
  private readonly node: number;

  constructor(nodeId?: string) {
    this.node = nodeId === undefined ? randomBytes(2).readUInt16BE(0) : hash16(nodeId);
  }

  next(now = Date.now()): string {
    const bytes = Buffer.allocUnsafe(12);
    bytes.writeUIntBE(now % 2 ** 48, 0, 6);
    bytes.writeUInt16BE(this.node, 6);
    this.counter = (this.counter + 1) >>> 0;
    bytes.writeUInt32BE(this.counter, 8);
    return bytes.toString('base64url');
  }
}

function hash16(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash ^ (hash >>> 16)) & 0xffff;
}
