/**
 * `engines.node` in package.json against every installed package (production and dev, nested
 * ones too, as they are on disk under node_modules): every Node version ours allows must be
 * allowed by each package's own `engines.node`, so `npm ci` (and a git install, which installs
 * the dev dependencies for `prepare`) never meets EBADENGINE on a Node we claim to support.
 * ESLint 10 and its parts are what need ^20.19.0 || ^22.13.0 || >=24.
 */
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { satisfies, subset, validRange } from 'semver';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/spawn.js';

interface Manifest {
  name?: string;
  version?: string;
  engines?: { node?: unknown };
}

const readManifest = (dir: string): Manifest | null => {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
  } catch {
    return null;
  }
};

/** Every package directory under `modules` (scoped ones and nested node_modules included). */
function installed(modules: string, found = new Map<string, Manifest>()): Map<string, Manifest> {
  let entries: string[];
  try {
    entries = readdirSync(modules);
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (entry.startsWith('.')) continue; // .bin, .package-lock.json, caches
    const dir = join(modules, entry);
    if (entry.startsWith('@')) {
      installed(dir, found);
      continue;
    }
    const real = realpathSync(dir);
    if (found.has(real)) continue;
    const manifest = readManifest(real);
    if (manifest === null) continue;
    found.set(real, manifest);
    installed(join(real, 'node_modules'), found);
  }
  return found;
}

const ours = (readManifest(ROOT)?.engines?.node ?? '') as string;
const packages = installed(join(ROOT, 'node_modules'));

describe('engines.node', () => {
  it('is a valid range that the Node running the tests satisfies', () => {
    expect(validRange(ours)).not.toBeNull();
    expect(satisfies(process.versions.node, ours)).toBe(true);
  });

  it('is within every installed package’s engines.node', () => {
    // A real walk: the dev tools alone are hundreds of packages.
    expect(packages.size).toBeGreaterThan(200);
    const declared = [...packages.values()].filter(
      (manifest) => typeof manifest.engines?.node === 'string',
    );
    expect(declared.length).toBeGreaterThan(100);
    const outside = declared
      .filter((manifest) => !subset(ours, manifest.engines!.node as string))
      .map((m) => `${m.name}@${m.version}: ${String(m.engines!.node)}`);
    expect(outside, `engines.node ${ours} allows Node versions these do not`).toEqual([]);
  });

  it('allows the releases the dependencies allow (20.19, 22.13, 24) and not 22.12', () => {
    for (const version of ['20.19.0', '20.20.2', '22.13.0', '22.20.0', '24.0.0', '25.1.0'])
      expect(satisfies(version, ours), version).toBe(true);
    // ESLint 10 needs 22.13 on Node 22; 21 and 23 are not LTS lines ESLint accepts.
    for (const version of ['18.20.0', '20.18.3', '21.7.0', '22.12.0', '23.11.0'])
      expect(satisfies(version, ours), version).toBe(false);
  });
});
