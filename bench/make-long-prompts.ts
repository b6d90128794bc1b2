/**
 * bench/prompts-long.jsonl: long held-out prompts (300-450 tokens with <s>) of third-party Python,
 * a domain the model never saw in training (the corpus excludes site- and dist-packages). Each
 * prompt is a run of whole lines from one file, so prompt + 64 new tokens still fits the 512-token
 * context while using most of it.
 *
 *   npx tsx bench/make-long-prompts.ts [--root /usr/lib/python3/dist-packages] [--n 100]
 *   npx tsx bench/make-long-prompts.ts --residue 3 --n 40 --out bench/prompts-tune.jsonl
 *
 * --residue r takes the files whose index is r mod 7 instead (default 0): bench/prompts-tune.jsonl
 * (residue 3) is where drafter settings are tuned, so the judged set stays untouched by tuning.
 *
 * Files are taken in sorted path order, every 7th one, skipping those bench/prompts-thirdparty.jsonl
 * was cut from (the first 400 eligible files in the same order); one prompt per file, starting at a
 * line chosen by a hash of the path, so the output is the same on any machine with the same packages.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadArtifact, loadManifest, TextTokenizer } from '../src/engine/index.js';
import { fsShardSource } from '../scripts/node/fs-shard-source.js';

const { values: args } = parseArgs({
  options: {
    root: { type: 'string', default: '/usr/lib/python3/dist-packages' },
    n: { type: 'string', default: '100' },
    min: { type: 'string', default: '300' },
    max: { type: 'string', default: '450' },
    out: { type: 'string', default: 'bench/prompts-long.jsonl' },
    residue: { type: 'string', default: '0' },
    model: { type: 'string', default: 'model-shards/default' },
  },
});
const src = fsShardSource(args.model!);
const tok = new TextTokenizer(await loadArtifact(src, await loadManifest(src), 'tokenizer'));
const [lo, hi] = [Number(args.min), Number(args.max)];

function* walk(dir: string): Generator<string> {
  const entries = readdirSync(dir).sort();
  for (const e of entries) {
    const p = join(dir, e);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) yield* walk(p);
    else if (e.endsWith('.py')) yield p;
  }
}

const out: string[] = [];
let eligible = 0;
for (const path of walk(args.root!)) {
  if (out.length >= Number(args.n)) break;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    continue;
  }
  if (!(text.length > 2000 && text.length < 200_000) || text.includes('\ufffd')) continue;
  eligible++;
  if (eligible <= 400 || eligible % 7 !== Number(args.residue)) continue; // not the files of prompts-thirdparty.jsonl
  const lines = text.split('\n');
  const h = createHash('sha256').update(path).digest().readUInt32BE(0);
  const target = lo + (h % (hi - lo + 1));
  let prompt = '';
  let n = 0;
  for (let i = h % Math.max(1, lines.length - 60); i < lines.length; i++) {
    const next = prompt + lines[i] + '\n';
    const count = 1 + tok.encode(next).length;
    if (count > hi) break;
    prompt = next;
    n = count;
    if (n >= target) break;
  }
  if (n >= lo && prompt.trim()) out.push(JSON.stringify({ prompt, tokens: n, source: path.slice(args.root!.length + 1) }));
}
writeFileSync(args.out!, out.join('\n') + '\n');
console.log(`${out.length} prompts -> ${args.out}`);
