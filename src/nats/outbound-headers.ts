import { Match, type MsgHdrs } from '@nats-io/nats-core';
import { InvalidArgumentError } from '../errors.js';

const encoder = new TextEncoder();
/** RFC 7230 token characters: what a header name may hold. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const LINE_BREAK = /[\r\n]/;

function same(a: string, b: string, match: Match): boolean {
  return match === Match.Exact ? a === b : a.toLowerCase() === b.toLowerCase();
}

/**
 * Headers the gateway sends with every request, built for the hot path: nats-core's `headers()`
 * re-canonicalises and re-scans every key on each `set` (about 10 KB of garbage per request with
 * gen_api's dozen headers). These are appended once, in order, with the same validation (token
 * names, no line breaks in values), and encoded straight to the wire form. They implement
 * MsgHdrs fully, so anything reading them back works; publish only calls `encode()`.
 */
export class OutboundHeaders implements MsgHdrs {
  private readonly names: string[] = [];
  private readonly entries: string[] = [];
  code = 0;
  description = '';

  get hasError(): boolean {
    return this.code >= 300;
  }

  get status(): string {
    return `${this.code} ${this.description}`.trim();
  }

  append(name: string, value: string): void {
    if (!TOKEN.test(name))
      throw new InvalidArgumentError(`invalid header name ${JSON.stringify(name)}`);
    if (LINE_BREAK.test(value))
      throw new InvalidArgumentError(`header ${name}: values cannot contain \\r or \\n`);
    this.names.push(name);
    this.entries.push(value.trim());
  }

  set(name: string, value: string, match: Match = Match.Exact): void {
    this.delete(name, match);
    this.append(name, value);
  }

  get(name: string, match: Match = Match.Exact): string {
    const i = this.names.findIndex((n) => same(n, name, match));
    return i < 0 ? '' : this.entries[i]!;
  }

  last(name: string, match: Match = Match.Exact): string {
    for (let i = this.names.length - 1; i >= 0; i--)
      if (same(this.names[i]!, name, match)) return this.entries[i]!;
    return '';
  }

  has(name: string, match: Match = Match.Exact): boolean {
    return this.names.some((n) => same(n, name, match));
  }

  values(name: string, match: Match = Match.Exact): string[] {
    return this.entries.filter((_, i) => same(this.names[i]!, name, match));
  }

  keys(): string[] {
    return [...new Set(this.names)];
  }

  delete(name: string, match: Match = Match.Exact): void {
    for (let i = this.names.length - 1; i >= 0; i--) {
      if (!same(this.names[i]!, name, match)) continue;
      this.names.splice(i, 1);
      this.entries.splice(i, 1);
    }
  }

  *[Symbol.iterator](): IterableIterator<[string, string[]]> {
    for (const name of this.keys()) yield [name, this.values(name)];
  }

  /** The wire form (`NATS/1.0\r\nName: value\r\n…\r\n\r\n`), as nats-core's publish expects. */
  encode(): Uint8Array {
    let text =
      this.code > 0 && this.description !== ''
        ? `NATS/1.0 ${this.code} ${this.description}`
        : 'NATS/1.0';
    for (let i = 0; i < this.names.length; i++) text += `\r\n${this.names[i]}: ${this.entries[i]}`;
    return encoder.encode(`${text}\r\n\r\n`);
  }
}
