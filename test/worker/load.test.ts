/**
 * Load on loopback: 32 concurrent streaming session requests plus 32 ephemeral ones (streaming and not,
 * completions and chat), all at once against one workerd. Checked: zero errors (HTTP 200, no error event),
 * every stream ends with `data: [DONE]`, and every text equals that of the same request run alone
 * (greedy decoding: concurrency must not change a token). Afterwards each session reports the tokens it
 * holds (prompt + completion) and is idle. Reported, not asserted: wall times of the sequential and the
 * concurrent phase, and how many streams were generating at once (evidence that the load overlapped).
 *
 * Raw `fetch` and a hand-written SSE parser, not the `openai` client: the test sees the exact bytes
 * (a missing [DONE] or an error event in the middle of a stream is not hidden by a client's parsing).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startWorker, type Worker } from './harness';

const KEY = 'sk-bob';
const SESSIONS = 32;
const EPHEMERAL = 32;
const RUN = randomUUID().slice(0, 8); // reruns against a persisted store never reuse a session id

let w: Worker;

beforeAll(async () => {
  w = await startWorker(inject('workerBundleDir'));
});
afterAll(async () => {
  await w?.dispose();
});

// ------------------------------------------------------------------------------------------- requests
const VERBS = ['parse', 'load', 'save', 'merge', 'split', 'count', 'sort', 'filter'];
const NOUNS = ['config', 'users', 'lines', 'tokens', 'matrix', 'graph', 'records', 'words'];
const ARGS = ['path', 'items', 'data, key=None', 'text', 'rows, cols', 'nodes', 'records, limit=10', 's'];

/** 64 distinct short Python prompts (well under 60 tokens each), in four shapes. */
function codePrompt(i: number): string {
  const verb = VERBS[i % 8];
  const noun = NOUNS[Math.floor(i / 8) % 8];
  const arg = ARGS[(i * 3) % 8];
  const Cap = (s: string) => s[0].toUpperCase() + s.slice(1);
  switch (i % 4) {
    case 0:
      return `def ${verb}_${noun}(${arg}):\n    """${Cap(verb)} the ${noun}."""\n`;
    case 1:
      return `class ${Cap(noun)}${Cap(verb)}er:\n    def __init__(self, ${arg}):\n`;
    case 2:
      return `import os\nimport sys\n\n\ndef ${verb}_${noun}(${arg}):\n`;
    default:
      return `# ${Cap(verb)} ${noun} from the input.\nasync def ${verb}_${noun}_async(${arg}):\n    result = []\n`;
  }
}

interface Req {
  i: number;
  path: '/v1/completions' | '/v1/chat/completions';
  body: Record<string, unknown>;
  stream: boolean;
  /** Session id of the concurrent phase (the reference run uses another one); null: ephemeral. */
  session: string | null;
}

function makeRequests(): Req[] {
  const reqs: Req[] = [];
  for (let i = 0; i < SESSIONS + EPHEMERAL; i++) {
    const ephemeral = i >= SESSIONS;
    // Sessions: every one streams; every fourth is a chat. Ephemeral: all four (stream × route) combinations.
    const chat = ephemeral ? i % 2 === 1 : i % 4 === 3;
    const stream = ephemeral ? Math.floor(i / 2) % 2 === 0 : true;
    const max_tokens = 16 + (i % 3) * 4; // 16, 20, 24
    const prompt = codePrompt(i);
    const body: Record<string, unknown> = chat
      ? {
          model: 'default',
          messages: [
            { role: 'system', content: 'You write Python.' },
            { role: 'user', content: `Complete this code:\n${prompt}` },
          ],
        }
      : { model: 'default', prompt };
    Object.assign(body, { max_tokens, temperature: 0 });
    if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
    reqs.push({ i, path: chat ? '/v1/chat/completions' : '/v1/completions', body, stream, session: ephemeral ? null : `load-${RUN}-${i}` });
  }
  return reqs;
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}
interface Result {
  text: string;
  usage: Usage | null;
  sessionTokens: number | null;
  /** Streams: when (performance.now()) the first text and the end of the body arrived. */
  firstText: number | null;
  end: number | null;
  /** Everything that went wrong with this request (empty: it succeeded). */
  errors: string[];
}

/** Splits complete SSE events (ended by a blank line) off `buf`: their data payloads, and the rest. */
function sseEvents(buf: string): { data: string[]; rest: string } {
  const parts = buf.replace(/\r\n/g, '\n').split('\n\n');
  const rest = parts.pop()!;
  const data = parts
    .filter((ev) => ev.trim())
    .map((ev) =>
      ev
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
        .join('\n'),
    );
  return { data, rest };
}

type Chunk = {
  error?: unknown;
  choices?: { text?: string; delta?: { content?: string | null }; message?: { content: string | null }; finish_reason?: string | null }[];
  usage?: Usage | null;
  ctc_edge?: { session_tokens: number };
};

/** One request over loopback with plain fetch; the text as the client sees it, and what was wrong. */
async function run(r: Req, session: string | null): Promise<Result> {
  const errors: string[] = [];
  const out: Result = { text: '', usage: null, sessionTokens: null, firstText: null, end: null, errors };
  const chat = r.path === '/v1/chat/completions';
  const headers: Record<string, string> = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  if (session) headers['x-session-id'] = session;
  let res: Response;
  try {
    res = await fetch(new URL(r.path, w.url), { method: 'POST', headers, body: JSON.stringify(r.body) });
  } catch (e) {
    errors.push(`fetch failed: ${(e as Error).message} (cause: ${String((e as { cause?: unknown }).cause ?? '')})`);
    return out;
  }
  if (res.status !== 200 || !r.stream) {
    let raw: string;
    try {
      raw = await res.text();
    } catch (e) {
      errors.push(`body read failed: ${(e as Error).message} (cause: ${String((e as { cause?: unknown }).cause ?? '')})`);
      return out;
    }
    if (res.status !== 200) {
      errors.push(`HTTP ${res.status}: ${raw.slice(0, 300)}`);
      return out;
    }
    let json: Chunk;
    try {
      json = JSON.parse(raw) as Chunk;
    } catch {
      errors.push(`body is not JSON: ${raw.slice(0, 300)}`);
      return out;
    }
    if (json.error) errors.push(`error body: ${JSON.stringify(json.error)}`);
    const c = json.choices?.[0];
    out.text = (chat ? c?.message?.content : c?.text) ?? '';
    if (!c?.finish_reason) errors.push('no finish_reason');
    out.usage = json.usage ?? null;
    out.sessionTokens = json.ctc_edge?.session_tokens ?? null;
    return out;
  }

  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('text/event-stream')) errors.push(`content-type ${type}`);
  const data: string[] = [];
  let finishes = 0;
  let buf = '';
  const take = (payloads: string[]) => {
    for (const d of payloads) {
      data.push(d);
      if (d === '[DONE]') continue;
      let chunk: Chunk;
      try {
        chunk = JSON.parse(d) as Chunk;
      } catch {
        errors.push(`data is not JSON: ${d.slice(0, 200)}`);
        continue;
      }
      if (chunk.error) {
        errors.push(`error event: ${JSON.stringify(chunk.error)}`);
        continue;
      }
      const c = chunk.choices?.[0];
      const piece = (chat ? c?.delta?.content : c?.text) ?? '';
      if (piece && out.firstText === null) out.firstText = performance.now();
      out.text += piece;
      if (c?.finish_reason) finishes++;
      if (chunk.usage) {
        out.usage = chunk.usage;
        out.sessionTokens = chunk.ctc_edge?.session_tokens ?? null;
      }
    }
  };
  try {
    const decoder = new TextDecoder();
    for await (const bytes of res.body! as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(bytes, { stream: true });
      const ev = sseEvents(buf);
      buf = ev.rest;
      take(ev.data);
    }
    buf += decoder.decode();
  } catch (e) {
    errors.push(`stream read failed: ${(e as Error).message} (cause: ${String((e as { cause?: unknown }).cause ?? '')})`);
  }
  out.end = performance.now();
  take(sseEvents(buf + '\n\n').data); // an event the body ended without its blank line
  if (data.at(-1) !== '[DONE]') errors.push(`stream does not end with [DONE]; last data: ${JSON.stringify(data.at(-1))}`);
  if (data.filter((d) => d === '[DONE]').length !== 1) errors.push('[DONE] more than once');
  if (finishes !== 1) errors.push(`${finishes} chunks with a finish_reason`);
  if (!out.usage) errors.push('no usage chunk');
  return out;
}

/** The most streams that were generating at one time (between their first text and their end). */
function maxOverlap(results: Result[]): number {
  const marks = results
    .filter((x) => x.firstText !== null && x.end !== null)
    .flatMap((x) => [
      [x.firstText!, 1],
      [x.end!, -1],
    ])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of marks) max = Math.max(max, (now += d));
  return max;
}

// ------------------------------------------------------------------------------------------- the test
describe('load', () => {
  it(
    `${SESSIONS} concurrent streaming sessions + ${EPHEMERAL} ephemeral requests: no errors, [DONE] everywhere, texts as when run alone`,
    async () => {
      const reqs = makeRequests();
      expect(new Set(reqs.map((r) => JSON.stringify(r.body))).size).toBe(reqs.length); // 64 distinct requests

      // 1. Reference: one at a time; session requests under other session ids than in phase 2 (fresh there).
      const t0 = performance.now();
      const ref: Result[] = [];
      for (const r of reqs) ref.push(await run(r, r.session && `${r.session}-ref`));
      const sequentialMs = performance.now() - t0;
      const refErrors = ref.flatMap((x, i) => x.errors.map((e) => `#${i} ${reqs[i].path}: ${e}`));
      expect(refErrors, 'the sequential reference run must succeed').toEqual([]);
      for (const [i, x] of ref.entries()) expect(x.text.length, `reference #${i} is empty`).toBeGreaterThan(0);

      // 2. All 64 at once.
      const t1 = performance.now();
      const got = await Promise.all(reqs.map((r) => run(r, r.session)));
      const concurrentMs = performance.now() - t1;
      console.log(
        `[load] ${reqs.length} requests (${SESSIONS} streaming sessions + ${EPHEMERAL} ephemeral): ` +
          `sequential ${sequentialMs.toFixed(0)} ms, concurrent ${concurrentMs.toFixed(0)} ms ` +
          `(at most ${maxOverlap(got)} streams generating at once)`,
      );

      const errors = got.flatMap((x, i) => x.errors.map((e) => `#${i} ${reqs[i].path} ${reqs[i].session ?? 'ephemeral'}${reqs[i].stream ? ' stream' : ''}: ${e}`));
      expect(errors).toEqual([]);
      const mismatches = got
        .map((x, i) => ({ i, path: reqs[i].path, session: reqs[i].session, stream: reqs[i].stream, alone: ref[i].text, together: x.text }))
        .filter((m) => m.alone !== m.together);
      expect(mismatches).toEqual([]);
      for (const [i, x] of got.entries()) {
        expect(x.usage, `#${i}`).toEqual(expect.objectContaining({ prompt_tokens: ref[i].usage!.prompt_tokens, completion_tokens: ref[i].usage!.completion_tokens }));
      }

      // 3. Each session holds its request's tokens and is idle.
      for (const [i, r] of reqs.entries()) {
        if (!r.session) continue;
        const res = await w.fetch(`/v1/sessions/${r.session}`, { key: KEY });
        const body = (await res.json()) as { id: string; tokens: number; busy: boolean; text: string | null };
        expect(res.status, `${r.session}: ${JSON.stringify(body)}`).toBe(200);
        expect(body, r.session).toMatchObject({ id: r.session, busy: false, tokens: got[i].sessionTokens });
        expect(body.tokens, r.session).toBe(got[i].usage!.prompt_tokens + got[i].usage!.completion_tokens);
        if (r.path === '/v1/completions') expect(body.text, r.session).toContain(`${r.body.prompt as string}${got[i].text}`);
      }
    },
    300_000,
  );
});
