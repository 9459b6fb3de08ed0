/**
 * Reading the headers of a received message on the hot path. nats-core decodes a header block
 * with an append per line that re-scans every key already seen (O(n²) arrays: ~9 KB of garbage
 * for the dozen gen_api request headers), and each `get` scans again. This parses the raw block
 * once into a plain lookup. The raw bytes are nats-core internals (`_rdata`, `_msg.hdr` on its
 * MsgImpl, `msg` on the services package's ServiceMsg), checked at run time: when they are not
 * there, the message's own `headers` are used, with the same results, only slower.
 */

/** What callers read: the first value of a header ('' when absent), like MsgHdrs.get. */
export interface HeaderValues {
  get(name: string): string;
  /** The status code of the header line (e.g. 503), 0 when none. */
  readonly code: number;
}

interface RawMsg {
  _rdata?: unknown;
  _msg?: { hdr?: unknown };
  msg?: unknown;
  headers?: { get(name: string): string; code?: number } | undefined;
}

const decoder = new TextDecoder();
const NONE: HeaderValues = { get: () => '', code: 0 };

class ParsedHeaders implements HeaderValues {
  private readonly values = new Map<string, string>();
  code = 0;

  constructor(block: string) {
    let end = block.indexOf('\r\n');
    const status = (end < 0 ? block : block.slice(0, end)).slice('NATS/1.0'.length).trim();
    if (status !== '') {
      const code = parseInt(status, 10);
      this.code = Number.isNaN(code) ? 0 : code;
    }
    while (end >= 0) {
      const start = end + 2;
      end = block.indexOf('\r\n', start);
      const line = end < 0 ? block.slice(start) : block.slice(start, end);
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon);
      if (!this.values.has(name)) this.values.set(name, line.slice(colon + 1).trim());
    }
  }

  get(name: string): string {
    return this.values.get(name) ?? '';
  }
}

/** The raw header block of a received message, or null when nats-core's internals are not as expected. */
export function rawHeaderBlock(msg: object): Uint8Array | 'none' | null {
  let m = msg as RawMsg;
  // A ServiceMsg (@nats-io/services) wraps the connection's Msg.
  if (!('_rdata' in m) && m.msg !== null && typeof m.msg === 'object') m = m.msg;
  const data = m._rdata;
  const hdr = m._msg?.hdr;
  if (!(data instanceof Uint8Array) || typeof hdr !== 'number') return null;
  return hdr > 0 ? data.subarray(0, hdr) : 'none';
}

/** The headers of a received Msg or ServiceMsg, parsed once. */
export function readHeaders(msg: object): HeaderValues {
  const raw = rawHeaderBlock(msg);
  if (raw === 'none') return NONE;
  if (raw !== null) return new ParsedHeaders(decoder.decode(raw));
  const headers = (msg as RawMsg).headers;
  return headers ? { get: (name) => headers.get(name), code: headers.code ?? 0 } : NONE;
}
