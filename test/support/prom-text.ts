/**
 * A parser for the Prometheus text exposition format (version 0.0.4), enough to read what a
 * scrape returns: `# HELP` / `# TYPE` lines, samples with escaped label values, NaN/±Inf.
 * Every line must parse: a malformed exposition fails the test instead of being skipped.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type: string;
  help: string;
  readonly samples: Sample[];
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;

function parseValue(text: string, line: string): number {
  // Prometheus reads these case-insensitively (Go's ParseFloat); prom-client writes `Nan`.
  const word = text.toLowerCase();
  if (word === 'nan') return Number.NaN;
  if (word === '+inf' || word === 'inf') return Number.POSITIVE_INFINITY;
  if (word === '-inf') return Number.NEGATIVE_INFINITY;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`bad sample value in: ${line}`);
  return value;
}

/** The family a sample belongs to: histogram/summary samples carry a suffix. */
function familyOf(name: string, families: Map<string, Family>): string {
  if (families.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (families.has(base)) return base;
    }
  }
  return name;
}

function parseSample(line: string): Sample {
  NAME.lastIndex = 0;
  const match = NAME.exec(line);
  if (!match) throw new Error(`bad metric name in: ${line}`);
  const name = match[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      NAME.lastIndex = i;
      const label = NAME.exec(line);
      if (!label) throw new Error(`bad label name at ${i} in: ${line}`);
      i += label[0].length;
      if (line[i] !== '=' || line[i + 1] !== '"')
        throw new Error(`expected =" at ${i} in: ${line}`);
      i += 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
        if (c === '"') break;
        if (c === '\\') {
          const next = line[i + 1];
          value += next === 'n' ? '\n' : next === '\\' ? '\\' : next === '"' ? '"' : `\\${next}`;
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
      i++;
      if (label[0] in labels) throw new Error(`duplicate label ${label[0]} in: ${line}`);
      labels[label[0]] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`expected , or } at ${i} in: ${line}`);
    }
  }
  if (line[i] !== ' ') throw new Error(`expected a space before the value in: ${line}`);
  const [valueText = '', timestamp, extra] = line
    .slice(i + 1)
    .trim()
    .split(/\s+/);
  if (extra !== undefined || (timestamp !== undefined && !/^-?\d+$/.test(timestamp)))
    throw new Error(`trailing text in: ${line}`);
  return { name, labels, value: parseValue(valueText, line) };
}

/** Parses a whole exposition into families by name. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let found = families.get(name);
    if (!found) {
      found = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, found);
    }
    return found;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const parts = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s?(.*)$/.exec(line);
      if (!parts) continue; // a plain comment
      const [, kind, name, rest] = parts as unknown as [string, string, string, string];
      if (kind === 'HELP') family(name).help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      else family(name).type = rest.trim();
      continue;
    }
    const sample = parseSample(line);
    family(familyOf(sample.name, families)).samples.push(sample);
  }
  return families;
}

/** A parsed scrape with lookups by sample name and labels. */
export class Scrape {
  readonly families: Map<string, Family>;
  constructor(readonly text: string) {
    this.families = parseExposition(text);
  }

  /** Samples named `name` whose labels include `labels`. */
  samples(name: string, labels: Record<string, string> = {}): Sample[] {
    const family = this.families.get(familyOf(name, this.families));
    return (family?.samples ?? []).filter(
      (sample) =>
        sample.name === name &&
        Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
  }

  /** The one sample named `name` with exactly these labels (others absent), or undefined. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const keys = Object.keys(labels).length;
    const found = this.samples(name, labels).filter(
      (sample) => Object.keys(sample.labels).length === keys,
    );
    if (found.length > 1)
      throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
    return found[0]?.value;
  }

  /** The sum over samples named `name` whose labels include `labels` (0 when none). */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.samples(name, labels).reduce((total, sample) => total + sample.value, 0);
  }

  /** The family's TYPE. */
  type(name: string): string | undefined {
    return this.families.get(name)?.type;
  }
}

/** GETs `url` and parses it, checking the status and the content type. */
export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status}`);
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain') || !type.includes('version=0.0.4'))
    throw new Error(`GET ${url}: content-type ${type}`);
  return new Scrape(await response.text());
}
