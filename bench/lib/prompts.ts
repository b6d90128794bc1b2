import { readFileSync } from 'node:fs';

/** Prompts of a JSONL file (one {"prompt": ...} per line), the first `limit` (0: all); exits 2 if it cannot be read. */
export function readPrompts(path: string, limit: number): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    process.stderr.write(`cannot read prompts file ${path} (JSONL, one {"prompt": ...} per line)\n`);
    process.exit(2);
  }
  const prompts = text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
  return limit > 0 ? prompts.slice(0, limit) : prompts;
}

/** A prompt's ids cut to `room` tokens: the first (<s>) and the last room - 1, as a client that keeps the newest text would. */
export function fitPrompt(ids: number[], room: number): number[] {
  return ids.length > room ? [ids[0], ...ids.slice(ids.length - room + 1)] : ids;
}
