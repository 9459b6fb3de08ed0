/**
 * Keeps the docs honest about the spec's §8 cases: protocol/phoenix.md's "Where the §8 cases
 * run" table must cover cases 1–107, and every file it names must hold a test titled with each
 * case it is listed for ("19: …", "34–36: …", "presence (81–85): …"). README's Compatibility
 * section must name the cases that are not in test/conformance/.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/spawn.js';

const CASES = 107;

/** "67, 69–71" → [67, 69, 70, 71]. */
function parseCases(text: string): number[] {
  return text.split(',').flatMap((part) => {
    const [from, to] = part.trim().split('–').map(Number) as [number, number | undefined];
    if (!Number.isInteger(from) || (to !== undefined && !Number.isInteger(to)))
      throw new Error(`bad case list ${JSON.stringify(text)}`);
    return Array.from({ length: (to ?? from) - from + 1 }, (_, i) => from + i);
  });
}

/** The case numbers a test file's titles claim: a leading "N:", "Na:", "N–M:" or a "(N–M):". */
function titledCases(source: string): Set<number> {
  const found = new Set<number>();
  const add = (from: string, to: string | undefined) => {
    for (let n = Number(from); n <= Number(to ?? from); n++) found.add(n);
  };
  for (const m of source.matchAll(/['"`](\d{1,3})[a-z]?(?:–(\d{1,3})[a-z]?)?:/g)) add(m[1]!, m[2]);
  for (const m of source.matchAll(/\((\d{1,3})(?:–(\d{1,3}))?\):/g)) add(m[1]!, m[2]);
  return found;
}

async function table(): Promise<{ cases: number[]; files: string[] }[]> {
  const doc = await readFile(join(ROOT, 'protocol/phoenix.md'), 'utf8');
  const section = doc
    .split('### Where the §8 cases run')[1]
    ?.split('\n\n')
    .find((block) => block.startsWith('| Cases |'));
  if (!section) throw new Error('protocol/phoenix.md has no "Where the §8 cases run" table');
  return section
    .split('\n')
    .slice(2)
    .map((row) => {
      const [, cases, files] = row.split('|').map((cell) => cell.trim());
      return {
        cases: parseCases(cases!),
        files: [...files!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
      };
    });
}

describe('the §8 case map in protocol/phoenix.md', () => {
  it('covers every case from 1 to 107, and nothing else', async () => {
    const covered = new Set((await table()).flatMap((row) => row.cases));
    expect([...covered].sort((a, b) => a - b)).toEqual(
      Array.from({ length: CASES }, (_, i) => i + 1),
    );
  });

  it('every file it names has a test titled with each case it is listed for', async () => {
    for (const row of await table()) {
      for (const file of row.files) {
        expect(file).toMatch(/^test\/(conformance|e2e)\/[\w-]+\.test\.ts$/);
        const titled = titledCases(await readFile(join(ROOT, file), 'utf8'));
        for (const n of row.cases)
          expect(titled.has(n), `${file} has no test titled with case ${n}`).toBe(true);
      }
    }
  });

  it('the cases outside test/conformance/ are 68, 85 and 103–107, as README says', async () => {
    const rows = await table();
    const inConformance = new Set(
      rows
        .filter((row) => row.files.some((file) => file.startsWith('test/conformance/')))
        .flatMap((row) => row.cases),
    );
    const elsewhere = Array.from({ length: CASES }, (_, i) => i + 1).filter(
      (n) => !inConformance.has(n),
    );
    expect(elsewhere).toEqual([68, 85, 103, 104, 105, 106, 107]);
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const compatibility = readme.split('## Compatibility')[1]?.split('\n## ')[0] ?? '';
    expect(compatibility.replace(/\s+/g, ' ')).toContain('1–67, 69–84 and 86–102');
    expect(compatibility.replace(/\s+/g, ' ')).toContain('68, 85 and 103–107');
  });
});
