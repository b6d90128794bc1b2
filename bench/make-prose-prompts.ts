/**
 * bench/prompts-prose.jsonl: long held-out prompts (300-450 tokens with <s>) of English technical prose
 * the model never saw: manual pages of command-line tools (section 1) rendered to plain text. The corpus
 * holds Python's own docs and Node.js's API docs, so pages of Python and Node.js tools are left out.
 *
 *   npx tsx bench/make-prose-prompts.ts [--n 40] [--out bench/prompts-prose.jsonl]
 *
 * Pages are taken in sorted file order, every 17th one of at least 2.5 KB compressed (4 KB of text); one prompt per page:
 * whole lines from its DESCRIPTION section on (or its start), so the output is the same on any machine
 * with the same manual pages. Rendering uses `man` (MANWIDTH=80, not justified, no hyphenation, no pager,
 * overstrikes removed).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadArtifact, loadManifest, TextTokenizer } from '../src/engine/index.js';
import { fsShardSource } from '../scripts/node/fs-shard-source.js';

const { values: args } = parseArgs({
  options: {
    root: { type: 'string', default: '/usr/share/man/man1' },
    n: { type: 'string', default: '40' },
    min: { type: 'string', default: '300' },
    max: { type: 'string', default: '450' },
    out: { type: 'string', default: 'bench/prompts-prose.jsonl' },
    model: { type: 'string', default: 'model-shards/default' },
  },
});
const src = fsShardSource(args.model!);
const manifest = await loadManifest(src);
const tok = new TextTokenizer(await loadArtifact(src, manifest, 'tokenizer'));
const [min, max, n] = [Number(args.min), Number(args.max), Number(args.n)];

/** Tools whose docs (or whose language's docs) are in the corpus; and gcloud's thousands of near-identical
 *  generated pages, which would make most of the set one template. */
const EXCLUDED = /^(python|py|pip|pydoc|idle|2to3|node|npm|npx|corepack|gcloud)/i;

function render(file: string): string {
  const raw = execFileSync('man', ['--nj', '--nh', '-P', 'cat', '-l', file], { env: { ...process.env, MANWIDTH: '80', MAN_KEEP_FORMATTING: '' }, stdio: ['ignore', 'pipe', 'ignore'] });
  // drop overstrikes (x\bx bold, _\bx underline) and trailing spaces
  return raw.toString('utf8').replace(/.\u0008/g, '').replace(/[ \t]+$/gm, '');
}

const files = readdirSync(args.root!)
  .filter((f) => f.endsWith('.1.gz') && !EXCLUDED.test(f) && statSync(join(args.root!, f)).size >= 2500)
  .sort();
const out: string[] = [];
for (let i = 0; i < files.length && out.length < n; i += 17) {
  let text: string;
  try {
    text = render(join(args.root!, files[i]));
  } catch {
    continue;
  }
  if (text.length < 4096) continue;
  const lines = text.split('\n');
  const from = Math.max(0, lines.findIndex((l) => /^DESCRIPTION/.test(l)));
  let prompt = '';
  for (const line of lines.slice(from)) {
    const next = prompt + line + '\n';
    if (tok.encode(next).length + 1 > max) break;
    prompt = next;
  }
  const count = tok.encode(prompt).length + 1;
  if (count < min) continue;
  out.push(JSON.stringify({ prompt, source: `man1/${files[i]}`, tokens: count }));
}
writeFileSync(args.out!, out.join('\n') + '\n');
process.stderr.write(`${out.length} prompts -> ${args.out}\n`);
