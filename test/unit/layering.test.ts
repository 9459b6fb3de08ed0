/**
 * Layering of the published package. `gen-gateway/worker` runs in worker processes that have no
 * gateway in them, so its import graph may reach src/worker, the wire contract (src/nats), src/util,
 * src/log and the error base, never gateway internals. And the declarations the build emits
 * (what `dist/**\/*.d.ts` holds) carry no `@internal` member: `stripInternal` removes them.
 * Every name the two entry points export has a doc comment (read from the API reports in api/,
 * which `npm run api` keeps equal to the build).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/spawn.js';

const SRC = join(ROOT, 'src');

/** Directories (and files) under src/ the worker SDK must never reach. */
const GATEWAY_ONLY = [
  'genapi/',
  'socket/',
  'channel/',
  'transport/',
  'ratelimit/',
  'bus/',
  'admin/',
  'tracing/',
  'gateway.ts',
];

/**
 * Layers that only point down, bottom first. Each layer's files may import files of their own
 * layer and of the layers named in its `below`, nothing else; a ranked layer named in `below` must
 * come earlier in this list, so two layers never import each other. transport/ is below socket/:
 * a transport knows the socket layer only through the TransportHost interface it declares
 * (transport/host.ts), which SocketMount supplies. errors.ts (the error base) is the bottom.
 * Layers not ranked here (channel/, config/, …) are not checked yet.
 */
const LAYERS: readonly { readonly layer: string; readonly below: readonly string[] }[] = [
  { layer: 'errors.ts', below: [] },
  { layer: 'util/', below: [] },
  { layer: 'wire/', below: ['errors.ts'] },
  { layer: 'http/', below: ['errors.ts'] },
  { layer: 'transport/', below: ['errors.ts', 'util/', 'wire/', 'http/'] },
  {
    layer: 'socket/',
    below: [
      'errors.ts',
      'util/',
      'wire/',
      'http/',
      'transport/',
      'channel/',
      'config/',
      'presence/',
      'ratelimit/',
      'telemetry/',
    ],
  },
];

/** The layer of a src/ file: its top folder (`socket/`) or, at the root, the file (`errors.ts`). */
function layerOf(file: string): string {
  const inSrc = relative(SRC, file).split('\\').join('/');
  const slash = inSrc.indexOf('/');
  return slash < 0 ? inSrc : inSrc.slice(0, slash + 1);
}

/** Every .ts file under a src/ folder. */
function filesUnder(folder: string): string[] {
  return readdirSync(join(SRC, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(SRC, folder, name));
}

/** The relative imports and re-exports of one TypeScript file, resolved to src/ files. */
function relativeImports(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  const found: string[] = [];
  for (const statement of source.statements) {
    const specifier =
      (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
      statement.moduleSpecifier &&
      ts.isStringLiteral(statement.moduleSpecifier)
        ? statement.moduleSpecifier.text
        : null;
    if (specifier === null || !specifier.startsWith('.')) continue;
    const target = resolve(dirname(file), specifier.replace(/\.js$/, '.ts'));
    if (!existsSync(target))
      throw new Error(`${relative(ROOT, file)}: cannot resolve ${specifier}`);
    found.push(target);
  }
  return found;
}

/** Every src/ file reachable from `entry` through relative imports, with the path that got there. */
function importGraph(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    const path = seen.get(file) ?? [];
    for (const target of relativeImports(file)) {
      if (seen.has(target)) continue;
      seen.set(target, [...path, target]);
      queue.push(target);
    }
  }
  return seen;
}

/** The top-level names an API report marks `(undocumented)`. */
function undocumented(report: string): string[] {
  const lines = readFileSync(join(ROOT, 'api', report), 'utf8').split('\n');
  const names: string[] = [];
  lines.forEach((line, i) => {
    if (!line.startsWith('// @public (undocumented)')) return;
    const declaration = /^export (?:declare )?(?:abstract )?\w+ (\w+)/.exec(lines[i + 1] ?? '');
    names.push(declaration?.[1] ?? lines[i + 1] ?? '?');
  });
  return names;
}

describe('layering', () => {
  it('gen-gateway/worker reaches no gateway internals', () => {
    const graph = importGraph(join(SRC, 'worker', 'index.ts'));
    const offending = [...graph]
      .filter(([file]) => {
        const inSrc = relative(SRC, file).split('\\').join('/');
        return GATEWAY_ONLY.some((prefix) => inSrc === prefix || inSrc.startsWith(prefix));
      })
      .map(([, path]) => path.map((file) => relative(ROOT, file)).join(' -> '));
    expect(offending).toEqual([]);
    // The walk itself works: it reaches the wire contract the worker is built on.
    expect(graph.has(join(SRC, 'nats', 'fun-config.ts'))).toBe(true);
  });

  it('ranked layers import only the layers below them', () => {
    const offending: string[] = [];
    for (const { layer, below } of LAYERS) {
      const files = layer.endsWith('/') ? filesUnder(layer) : [join(SRC, layer)];
      expect(files.length).toBeGreaterThan(0); // the layer exists
      for (const file of files) {
        for (const target of relativeImports(file)) {
          const to = layerOf(target);
          if (to !== layer && !below.includes(to))
            offending.push(`${relative(ROOT, file)} -> ${relative(ROOT, target)}`);
        }
      }
    }
    expect(offending).toEqual([]);
  });

  it('the ranked layers point one way: a layer is below only layers that come after it', () => {
    const rank = new Map(LAYERS.map(({ layer }, i) => [layer, i]));
    const upward = LAYERS.flatMap(({ layer, below }) =>
      below
        .filter((lower) => (rank.get(lower) ?? -1) >= (rank.get(layer) ?? 0))
        .map((lower) => `${layer} lists ${lower}, ranked above it`),
    );
    expect(upward).toEqual([]);
  });

  it('every exported name has a doc comment', () => {
    expect(undocumented('gen-gateway.api.md')).toEqual([]);
    expect(undocumented('gen-gateway-worker.api.md')).toEqual([]);
  });

  it('the emitted declarations carry no @internal', () => {
    // The build's options (tsconfig.build.json), declarations emitted file by file in memory:
    // stripping is syntactic, so this sees what the build writes, without a full type-check and
    // without racing other test files that run `npm run build` into dist/.
    const configPath = join(ROOT, 'tsconfig.build.json');
    const config = ts.getParsedCommandLineOfConfigFile(
      configPath,
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
          throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
        },
      },
    );
    if (!config) throw new Error('tsconfig.build.json did not parse');
    expect(config.options.stripInternal).toBe(true);
    const leaked: string[] = [];
    let tagged = 0;
    for (const file of config.fileNames) {
      const text = readFileSync(file, 'utf8');
      if (text.includes('@internal')) tagged++;
      const { outputText } = ts.transpileDeclaration(text, {
        fileName: file,
        compilerOptions: config.options,
        reportDiagnostics: false,
      });
      if (outputText.includes('@internal')) leaked.push(relative(ROOT, file));
    }
    expect(tagged).toBeGreaterThan(0); // the check has something to check
    expect(leaked).toEqual([]);
  }, 120_000);
});
