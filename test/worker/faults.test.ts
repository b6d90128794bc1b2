/**
 * Faults during a request, each with a clear error and nothing lost: a failing storage write, the session
 * object reset mid-stream (what an eviction does to a running request), and clients that disconnect at
 * random points. The rule they all check: a session changes only by requests that ran to their end; an
 * interrupted one leaves it exactly at its last complete request, so a retry (or `continue`) goes on as if
 * the interruption never happened.
 *
 * Faults are injected with the `X-Fault` header, honoured because this worker runs with FAULT_INJECTION=on:
 * `failPersist` makes the session's SQLite transaction throw after writing its KV chunks (real SQLite rolls
 * it back), `evictAfterTokens` calls the Durable Object's `ctx.abort()` (workerd resets the object).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type OpenAI from 'openai';
import { startWorker, type Worker } from './harness';

const P = 'import os\n\n\ndef walk_tree(root):\n    """Yield every file below root."""\n';
let w: Worker;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctc-edge-faults-'));
  w = await startWorker(inject('workerBundleDir'), { persist: dir, vars: { FAULT_INJECTION: 'on' } });
});
afterAll(async () => {
  await w?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

interface Info {
  tokens: number;
  kv_tokens_stored: number;
  busy: boolean;
  text: string | null;
}
const info = async (id: string) => (await (await w.fetch(`/v1/sessions/${id}`, { key: 'sk-bob' })).json()) as Info;
const ext = (r: unknown) => (r as { ctc_edge: { session_tokens: number; restore: { mode: string } | null } }).ctc_edge;

async function complete(body: Record<string, unknown>, session?: string) {
  return w.client('sk-bob').completions.create({ model: 'default', temperature: 0, ...body } as unknown as OpenAI.CompletionCreateParamsNonStreaming, {
    headers: session ? { 'X-Session-Id': session } : undefined,
  });
}

/** POST /v1/completions; returns the parsed SSE data lines (streams) or the raw body. */
async function post(body: Record<string, unknown>, headers: Record<string, string>) {
  const res = await w.fetch('/v1/completions', {
    method: 'POST',
    key: 'sk-bob',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'default', temperature: 0, ...body }),
  });
  return res;
}

function sseData(raw: string): string[] {
  return raw
    .split('\n\n')
    .map((e) => e.split('\n').find((l) => l.startsWith('data: '))?.slice(6))
    .filter((d): d is string => d !== undefined);
}

/** The session's text after `P` once `n` more greedy tokens follow it, from one uninterrupted request. */
async function reference(n: number): Promise<string> {
  return (await complete({ prompt: P, max_tokens: n })).choices[0].text;
}

describe('a storage write fails mid-request', () => {
  it('the client gets an error, the stored session stays at its last complete request, a retry continues correctly', async () => {
    const id = 'save-fails';
    const first = await complete({ prompt: P, max_tokens: 8 }, id);
    const before = await info(id);
    expect(before.tokens).toBe(ext(first).session_tokens);

    // Streaming: the tokens arrive, then an error event (not [DONE] after a finish chunk), then [DONE].
    const res = await post({ prompt: '', continue: true, max_tokens: 150, stream: true }, { 'x-session-id': id, 'x-fault': '{"failPersist":true}' });
    expect(res.status).toBe(200);
    const data = sseData(await res.text());
    expect(data.at(-1)).toBe('[DONE]');
    const err = JSON.parse(data.at(-2)!) as { error: { code: string; type: string } };
    expect(err.error).toMatchObject({ code: 'session_save_failed', type: 'service_unavailable' });
    expect(data.slice(0, -2).every((d) => (JSON.parse(d) as OpenAI.Completion).choices[0].finish_reason === null)).toBe(true);

    // Non-streaming: the body was being written when the save failed: it ends early (a broken
    // connection to the client, which the openai client retries), never as a complete JSON.
    const res2 = await post({ prompt: '', continue: true, max_tokens: 150 }, { 'x-session-id': id, 'x-fault': '{"failPersist":true}' });
    const body2 = await res2.text().catch((e: Error) => `<cut: ${e.message}>`);
    expect(() => JSON.parse(body2)).toThrow();

    // Storage: exactly the last complete request (the rolled-back transaction left no KV chunk behind).
    const after = await info(id);
    expect(after).toMatchObject({ tokens: before.tokens, kv_tokens_stored: before.kv_tokens_stored, busy: false });

    // The retry (without the fault) continues as one uninterrupted request would have.
    const retry = await complete({ prompt: '', continue: true, max_tokens: 150 }, id);
    expect(ext(retry).restore?.mode).toBe('kv'); // memory was dropped: restored from the stored state
    expect(first.choices[0].text + retry.choices[0].text).toBe(await reference(158));
  });
});

describe('the session object is evicted in the middle of a stream', () => {
  it('the stream ends with an error event; `continue` afterwards yields exactly the uninterrupted tokens', async () => {
    const id = 'evicted';
    const first = await complete({ prompt: P, max_tokens: 8 }, id);
    const res = await post({ prompt: '', continue: true, max_tokens: 150, stream: true }, { 'x-session-id': id, 'x-fault': '{"evictAfterTokens":3}' });
    expect(res.status).toBe(200);
    const data = sseData(await res.text());
    expect(data.at(-1)).toBe('[DONE]');
    const err = JSON.parse(data.at(-2)!) as { error: { code: string } };
    expect(err.error.code).toBe('session_interrupted');
    const got = data
      .slice(0, -2)
      .map((d) => (JSON.parse(d) as OpenAI.Completion).choices[0].text)
      .join('');
    expect(got.length).toBeGreaterThan(0); // it was mid-stream

    // The new object has only storage: the last complete request.
    expect((await info(id)).tokens).toBe(ext(first).session_tokens);
    const next = await complete({ prompt: '', continue: true, max_tokens: 150 }, id);
    expect(first.choices[0].text + next.choices[0].text).toBe(await reference(158));
    // What the interrupted stream had delivered was a prefix of that text, never something else.
    expect(next.choices[0].text.startsWith(got)).toBe(true);
  });

  it('non-streaming: an eviction before the first text is a 503 with Retry-After, and the retry succeeds', async () => {
    const id = 'evicted-early';
    await complete({ prompt: P, max_tokens: 8 }, id);
    const res = await post({ prompt: '', continue: true, max_tokens: 40 }, { 'x-session-id': id, 'x-fault': '{"evictAfterTokens":1}' });
    // The first token event is also the first text: the reset lands either before the worker committed
    // to 200 (a clean 503) or right after (a cut body); both leave the session unchanged.
    const body = await res.text().catch(() => '');
    if (res.status === 503) {
      expect(res.headers.get('retry-after')).toBe('1');
      expect(JSON.parse(body)).toMatchObject({ error: { code: 'session_interrupted' } });
    } else {
      expect(() => JSON.parse(body)).toThrow();
    }
    const retry = await complete({ prompt: '', continue: true, max_tokens: 40 }, id);
    expect(retry.choices[0].text).toBe((await reference(48)).slice((await reference(8)).length));
  });
});

describe('clients disconnect at random points', () => {
  it('50 streams and 50 non-streaming requests: the session is free again at once, and holds only complete requests', async () => {
    const id = 'random-disconnects';
    const first = await complete({ prompt: P, max_tokens: 8 }, id);
    let held = ext(first).session_tokens;
    // A fixed seed in CI, a random one locally (printed, so a failure can be replayed).
    let seed = Number(process.env.FAULT_SEED ?? (process.env.CI ? 12345 : Math.floor(Math.random() * 2 ** 31)));
    console.log(`[faults] disconnect seed ${seed}`);
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const unlockMs: number[] = [];
    let completed = 0;
    let committedUnseen = 0;
    // Every request sends the same prompt and asks for 400 greedy tokens, so a complete one always leaves
    // the session with the same number of tokens: measure it once on another session.
    const full = ext(await complete({ prompt: P + first.choices[0].text, max_tokens: 400 }, `${id}-ref`)).session_tokens;
    for (let i = 0; i < 100; i++) {
      const stream = i % 2 === 0;
      const ac = new AbortController();
      const afterMs = Math.floor(rand() * 250);
      const res = await w.fetch('/v1/completions', {
        method: 'POST',
        key: 'sk-bob',
        headers: { 'content-type': 'application/json', 'x-session-id': id },
        body: JSON.stringify({ model: 'default', prompt: P + first.choices[0].text, max_tokens: 400, temperature: 0, stream, stream_options: stream ? { include_usage: true } : undefined }),
        signal: ac.signal,
      }).catch(() => null);
      // Read until the random moment, then drop the connection; remember whether the client saw the end.
      let text = '';
      const timer = setTimeout(() => ac.abort(), afterMs);
      try {
        if (res) text = await res.text();
      } catch {
        text = '';
      }
      clearTimeout(timer);
      const t0 = performance.now();
      const sawEnd = stream ? text.includes('data: [DONE]') : text.endsWith('}');
      let s = await info(id);
      while (s.busy && performance.now() - t0 < 5000) s = await info(id);
      unlockMs.push(performance.now() - t0);
      const what = `request ${i} (stream ${stream}, cut after ${afterMs} ms)`;
      expect(s.busy, what).toBe(false);
      if (sawEnd) {
        completed++;
        const last = stream ? (JSON.parse(sseData(text).at(-2)!) as unknown) : (JSON.parse(text) as unknown);
        held = ext(last).session_tokens;
        expect(held, what).toBe(full);
        expect(s.tokens, what).toBe(held);
      } else {
        // A request the session finished and stored just before the cut is a complete request whose
        // answer was lost in transit: the session holds either its previous state or that whole request,
        // never a part of one.
        expect([held, full], what).toContain(s.tokens);
        if (s.tokens === full && held !== full) committedUnseen++;
        held = s.tokens;
      }
    }
    unlockMs.sort((a, b) => a - b);
    console.log(`[faults] 100 disconnects (${completed} had finished first, ${committedUnseen} stored before the cut but not seen): session free after median ${unlockMs[50].toFixed(1)} ms, max ${unlockMs[99].toFixed(1)} ms`);
    // The session still works, from its last complete request.
    const next = await complete({ prompt: P + first.choices[0].text, max_tokens: 16 }, id);
    expect(first.choices[0].text + next.choices[0].text).toBe(await reference(24));
  }, 300_000);
});
