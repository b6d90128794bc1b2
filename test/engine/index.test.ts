/**
 * src/engine/index.ts is the engine's only door: the Worker, the browser build, the Node helpers,
 * the scripts and the benchmarks import the engine from there, never its inner files, and the engine imports nothing of
 * theirs. Its compile without host types (src/engine/tsconfig.json) is part of `npm run typecheck`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const ENGINE = join(ROOT, 'src/engine');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.m?ts$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

/** Relative module specifiers of static imports, re-exports, side-effect and dynamic imports, `typeof import()`. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.[^'"]*)\1/g)) specs.push(m[2]);
  return specs;
}

/** The engine file a specifier names, without extension (src/engine/tree for './tree.js'), or null outside it. */
function engineModule(file: string, spec: string): string | null {
  const target = resolve(dirname(file), spec).replace(/\.(js|ts|mjs|mts)$/, '');
  const rel = relative(ENGINE, target);
  return rel.startsWith('..') || rel === '' ? null : rel;
}

describe('the engine boundary', () => {
  it('src/, scripts/ and bench/ import the engine through src/engine/index.ts only', () => {
    const files = [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'scripts')), ...sources(join(ROOT, 'bench'))].filter((f) => !f.startsWith(ENGINE + '/'));
    expect(files.length).toBeGreaterThan(30);
    const inner: string[] = [];
    for (const f of files) {
      for (const spec of relativeImports(f)) {
        const mod = engineModule(f, spec);
        if (mod !== null && mod !== 'index') inner.push(`${relative(ROOT, f)}: '${spec}'`);
      }
    }
    expect(inner, 'import these from the engine index instead (add the export there if it is missing)').toEqual([]);
  });

  it('src/ imports nothing of scripts/, bench/ or test/ (the served code stands alone)', () => {
    const files = sources(join(ROOT, 'src'));
    const upward: string[] = [];
    for (const f of files) {
      for (const spec of relativeImports(f)) {
        const rel = relative(ROOT, resolve(dirname(f), spec));
        if (/^(scripts|bench|test)\//.test(rel)) upward.push(`${relative(ROOT, f)}: '${spec}'`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('src/engine imports nothing outside src/engine but packages', () => {
    const files = sources(ENGINE);
    expect(files.length).toBeGreaterThan(10);
    const outside: string[] = [];
    for (const f of files) {
      for (const spec of relativeImports(f)) {
        if (relative(ENGINE, resolve(dirname(f), spec)).startsWith('..')) outside.push(`${relative(ROOT, f)}: '${spec}'`);
      }
    }
    expect(outside).toEqual([]);
  });

  it('npm run typecheck compiles the engine under its own tsconfig (no DOM, Node or Workers types)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.typecheck).toMatch(/tsc --noEmit -p src\/engine\b/);
    const tsconfig = readFileSync(join(ENGINE, 'tsconfig.json'), 'utf8');
    expect(tsconfig).toMatch(/"lib":\s*\["ES2022"\]/);
    expect(tsconfig).toMatch(/"types":\s*\[\]/);
  });
});
