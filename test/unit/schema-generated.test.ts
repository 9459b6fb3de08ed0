/**
 * src/schema/generated/ is what scripts/gen-schemas.mjs makes of protocol/schemas now: a schema
 * edited without regenerating (or a generated file edited by hand) fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs script without declarations
import { generate } from '../../scripts/gen-schemas.mjs';

describe('generated schema code', () => {
  it('is up to date with protocol/schemas (run node scripts/gen-schemas.mjs)', async () => {
    const files = await (generate as () => Promise<[string, string][]>)();
    expect(files.length).toBeGreaterThan(0);
    for (const [path, text] of files) expect(readFileSync(path, 'utf8'), path).toBe(text);
  });

  it('the validators import nothing at run time (ajv is a devDependency)', () => {
    const code = readFileSync(
      new URL('../../src/schema/generated/validators.ts', import.meta.url),
      'utf8',
    );
    expect(code).not.toMatch(/\brequire\(|^\s*import\b/m);
  });
});
