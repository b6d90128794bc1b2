/**
 * Every repository path the documentation cites exists: README.md, docs/*.md, the READMEs of bench/,
 * scripts/, training/ and checkpoints/, and the comments of the source under src/. A path here is a
 * token such as `src/engine/round.ts`, `bench/results/` or `bench/results/bench-long-v6.{json,svg}` (braces expanded)
 * whose first segment is a top-level folder of the repository; placeholders (`<name>`, `*`), URLs and
 * absolute paths are not paths, and neither is what git ignores (the output of a command, such as
 * `data/onnx/base.onnx` or `public/build/`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

/** Files a command writes by default, cited as such (not kept in git). */
const OUTPUTS = new Set(['bench/results/bench.json']);

function git(args: string[], input?: string): { status: number | null; stdout: string } {
  const r = spawnSync('git', args, { cwd: ROOT, input, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '' };
}

/** Top-level folders that hold tracked files. */
function topFolders(): Set<string> {
  const files = git(['ls-files']).stdout.split('\n').filter(Boolean);
  return new Set(files.filter((f) => f.includes('/')).map((f) => f.split('/')[0]));
}

/** `a/{b,c}.d` → `a/b.d`, `a/c.d` (one level of braces is all the docs use). */
export function expandBraces(p: string): string[] {
  const m = /\{([^{}]*)\}/.exec(p);
  if (!m) return [p];
  return m[1].split(',').flatMap((alt) => expandBraces(p.slice(0, m.index) + alt + p.slice(m.index + m[0].length)));
}

/** Path-like tokens of a text: a/b with no scheme, leading slash or placeholder. */
export function pathTokens(text: string, folders: Set<string>): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?<![\w.\-/:@~$%])[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.{},<>*-]*)+/g)) {
    let p = m[0].replace(/[.,:;]+$/, '');
    if (/[<>*]/.test(p)) continue;
    if (text[m.index + m[0].length] === '<') continue; // model-shards/<name>
    if (!folders.has(p.split('/')[0])) continue;
    out.push(...expandBraces(p));
  }
  return out;
}

/** The comments of a TypeScript / JavaScript file: block comments and line comments. */
export function comments(source: string): string {
  return [...source.matchAll(/\/\*[\s\S]*?\*\/|(?<![:'"`\\])\/\/[^\n]*/g)].map((m) => m[0]).join('\n');
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(m?ts|mjs|js)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

describe('paths cited in the documentation', () => {
  it('the token rules: braces, placeholders, URLs and absolute paths', () => {
    const folders = new Set(['src', 'bench', 'data']);
    expect(pathTokens('see `bench/results/x.{json,svg}`, and src/engine/.', folders)).toEqual(['bench/results/x.json', 'bench/results/x.svg', 'src/engine/']);
    expect(pathTokens('http://h/src/a.ts /usr/src/a.ts src/<name>/a.ts tokens/s ./src/a.ts', folders)).toEqual([]);
    expect(comments("const u = 'http://x/src/a.ts'; // src/b.ts\n/* bench/c.ts */")).toContain('src/b.ts');
    expect(comments("const u = 'http://x/src/a.ts';")).toBe('');
  });

  it('every cited path exists (or is output git ignores)', () => {
    const folders = topFolders();
    expect(folders.has('src')).toBe(true);
    const docs = [
      'README.md',
      ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
      'bench/README.md',
      'scripts/README.md',
      'training/README.md',
      'checkpoints/README.md',
    ];
    const cited: { where: string; path: string }[] = [];
    for (const d of docs) for (const path of pathTokens(readFileSync(join(ROOT, d), 'utf8'), folders)) cited.push({ where: d, path });
    for (const f of sources(join(ROOT, 'src'))) {
      for (const path of pathTokens(comments(readFileSync(f, 'utf8')), folders)) cited.push({ where: relative(ROOT, f), path });
    }
    expect(cited.length).toBeGreaterThan(100);
    const missing = cited.filter((c) => !existsSync(join(ROOT, c.path)) && !OUTPUTS.has(c.path));
    // output of commands (data/, public/build/, checkpoints' ckpt.pt ...) is ignored by git, not missing
    const ignored = new Set(git(['check-ignore', '--no-index', '--stdin'], missing.map((c) => c.path).join('\n') + '\n').stdout.split('\n').filter(Boolean));
    const wrong = missing.filter((c) => !ignored.has(c.path)).map((c) => `${c.where}: ${c.path}`);
    expect(wrong, 'paths cited that do not exist: fix the citation (or the path)').toEqual([]);
  });

  it('docs/RESULTS.md cites every result file in bench/results/ and lists every experiment', () => {
    const text = readFileSync(join(ROOT, 'docs/RESULTS.md'), 'utf8');
    const cited = new Set(pathTokens(text, topFolders()));
    const results = git(['ls-files', 'bench/results']).stdout.split('\n').filter(Boolean);
    expect(results.length).toBeGreaterThan(0);
    // a bench run writes its chart beside its JSON (x.svg beside x.json): citing the JSON cites both
    const uncited = results.filter((f) => !cited.has(f) && !cited.has(f.replace(/\.svg$/, '.json')));
    expect(uncited, 'cite these in docs/RESULTS.md or delete them').toEqual([]);
    const experiments = readdirSync(join(ROOT, 'bench/experiments')).filter((f) => f.endsWith('.ts'));
    expect(experiments.filter((f) => !text.includes(`\`${f}\``) && !cited.has(`bench/experiments/${f}`)), 'document these in docs/RESULTS.md or remove them').toEqual([]);
  });
});
