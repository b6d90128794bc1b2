/**
 * R2 failing while a model loads, with the real R2 and real workerd underneath: the worker's MODELS binding
 * is the harness's fault-injecting wrapper (StartOptions.r2Faults), which makes chosen `get`s throw (or their
 * body reads fail) and logs every get. Transient failures are retried with backoff and the model is served;
 * R2 down is a 503 in OpenAI's error shape, with Retry-After, naming the shard; the failed load is not
 * cached, so once R2 is back the next request is served. (Corrupt and truncated shards: shards.test.ts.)
 *
 * One worker (one compile of the ORT wasm) serves every case: each case loads its own copy of the default
 * model (`<case>/...` in the bucket, listed in MODEL_NAMES), since a loaded model stays cached in the isolate.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BROKEN_MODELS, MODEL_DIR, modelsBucket, r2Calls, readManifest, setR2Faults, startWorker, type Worker } from './harness';

/** R2_GET_ATTEMPTS of src/worker/model-cache.ts (not importable here: it pulls in the wasm). */
const ATTEMPTS = 4;
const COPIES = ['flaky', 'flakybody', 'down'] as const;

let w: Worker;
const manifest = readManifest();
const shardPaths = Object.values(manifest.files).flatMap((f) => f.shards.map((s) => s.path));
/** What a model load reads (drafter heads are read later, when a drafter first needs them). */
const loadPaths = ['manifest.json', ...[manifest.files.tokenizer, manifest.files.base].flatMap((f) => f.shards.map((s) => s.path))];

beforeAll(async () => {
  w = await startWorker(inject('workerBundleDir'), {
    r2Faults: true,
    vars: { MODEL_NAMES: ['default', ...BROKEN_MODELS, ...COPIES].join(',') },
  });
  const bucket = await modelsBucket(w.mf);
  for (const model of COPIES) {
    for (const p of [...shardPaths, 'manifest.json']) await bucket.put(`${model}/${p}`, new Uint8Array(readFileSync(join(MODEL_DIR, p))));
  }
});
afterAll(async () => {
  await w?.dispose();
});

const request = (model: string, stream = false) =>
  w.fetch('/v1/completions', {
    method: 'POST',
    key: 'sk-bob',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: 'def fib(n):', max_tokens: 12, temperature: 0, stream }),
  });
const textOf = async (res: Response) => ((await res.json()) as { choices: { text: string }[] }).choices[0].text;

type ErrBody = { error: { message: string; type: string; param: string | null; code: string | null } };

/** A 503 in OpenAI's error shape with a positive integer Retry-After. */
async function expect503(res: Response, code: string): Promise<ErrBody['error']> {
  expect(res.status).toBe(503);
  const retryAfter = res.headers.get('retry-after');
  expect(retryAfter).toMatch(/^[1-9]\d*$/);
  const body = (await res.json()) as ErrBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error).toMatchObject({ type: 'service_unavailable', param: null, code });
  return body.error;
}

/** Failed and successful gets per key, for keys under `<model>/`. */
async function callsByKey(model: string): Promise<Map<string, { failed: number; ok: number }>> {
  const byKey = new Map<string, { failed: number; ok: number }>();
  for (const c of await r2Calls(w, `${model}/`)) {
    const k = byKey.get(c.key) ?? { failed: 0, ok: 0 };
    if (c.failed) k.failed++;
    else k.ok++;
    byKey.set(c.key, k);
  }
  return byKey;
}

let reference: string;

describe('R2 faults while a model loads', () => {
  it('without faults, the wrapper passes every get through (the reference output)', async () => {
    await setR2Faults(w, null);
    const res = await request('default');
    expect(res.status).toBe(200);
    reference = await textOf(res);
    expect(reference.length).toBeGreaterThan(0);
    const calls = await callsByKey('default');
    expect([...calls.values()].every((c) => c.failed === 0 && c.ok === 1)).toBe(true); // every key once
    for (const p of loadPaths) expect(calls.has(`default/${p}`), p).toBe(true);
  });

  it('transient: gets that throw are retried with backoff, and two concurrent requests share one load', async () => {
    // The manifest is read first and alone: its first 3 gets fail, the 4th (the last attempt) succeeds.
    await setR2Faults(w, { failFirst: ATTEMPTS - 1, match: '^flaky/' });
    const t0 = Date.now();
    const [a, b] = await Promise.all([request('flaky'), request('flaky', true)]);
    const ms = Date.now() - t0;
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(await textOf(a)).toBe(reference);
    const sse = await b.text();
    const streamed = sse
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => (JSON.parse(l.slice(6)) as { choices: { text: string }[] }).choices[0]?.text ?? '')
      .join('');
    expect(streamed).toBe(reference);

    const calls = await callsByKey('flaky');
    expect(calls.get('flaky/manifest.json')).toEqual({ failed: ATTEMPTS - 1, ok: 1 });
    for (const p of loadPaths.slice(1)) expect(calls.get(`flaky/${p}`)).toEqual({ failed: 0, ok: 1 }); // one load for both
    // Backoff: at least 100+200+400 ms nominal, jitter factor >= 0.5.
    expect(ms).toBeGreaterThanOrEqual(350);
  });

  it('transient: a body read that fails is retried too', async () => {
    await setR2Faults(w, { failFirst: 3, match: '^flakybody/.*\\.bin$', failIn: 'body' });
    const res = await request('flakybody');
    expect(res.status).toBe(200);
    expect(await textOf(res)).toBe(reference);
    const calls = await callsByKey('flakybody');
    expect([...calls.values()].reduce((n, c) => n + c.failed, 0)).toBe(3);
    expect([...calls.values()].every((c) => c.ok === 1)).toBe(true); // each failed read was retried, once loaded
    for (const p of loadPaths) expect(calls.get(`flakybody/${p}`)?.ok, p).toBe(1);
  });

  it('R2 down: 503 naming the shard, with Retry-After; not cached, so served once R2 is back', async () => {
    await setR2Faults(w, { down: true, match: '^down/.*\\.bin$' }); // the manifest reads, no shard does
    const err = await expect503(await request('down'), 'shard_unavailable');
    const shard = shardPaths.find((p) => err.message.includes(`"${p}"`));
    expect(shard, err.message).toBeDefined();
    expect(err.message).toContain('"down"');
    // The shard that ended the load was tried ATTEMPTS times, no more.
    expect((await callsByKey('down')).get(`down/${shard}`)).toEqual({ failed: ATTEMPTS, ok: 0 });

    // Streaming requests fail the same way, before any event is sent.
    await expect503(await request('down', true), 'shard_unavailable');

    await setR2Faults(w, null);
    const res = await request('down');
    expect(res.status).toBe(200);
    expect(await textOf(res)).toBe(reference);
  });

  it('a missing shard (a deployment error, not retried) is a 503 with Retry-After too', async () => {
    const err = await expect503(await request('missing'), 'shard_missing');
    expect(err.message).toContain(readManifest().files.base.shards[0].path);
    const calls = await callsByKey('missing');
    expect([...calls.values()].every((c) => c.failed === 0 && c.ok === 1)).toBe(true); // a null is not retried
  });
});
