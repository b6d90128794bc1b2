/**
 * The sharded model store behind the API: a corrupt or missing shard is a clear 503 naming it (never
 * garbage output), and a failed load is not cached: once the shard is repaired, the next request works.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { firstBaseShard, repairCorruptModel, startWorker, type Worker } from './harness';

let w: Worker;
beforeAll(async () => {
  w = await startWorker(inject('workerBundleDir'));
});
afterAll(async () => {
  await w?.dispose();
});

const request = (model: string, stream = false) =>
  w.fetch('/v1/completions', {
    method: 'POST',
    key: 'sk-bob',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: 'def f():', max_tokens: 4, temperature: 0, stream }),
  });

type Err = { error: { message: string; type: string; code: string } };

describe('model shards', () => {
  it('a corrupt shard → 503 naming it', async () => {
    for (const stream of [false, true]) {
      const res = await request('corrupt', stream);
      expect(res.status).toBe(503);
      const body = (await res.json()) as Err;
      expect(body.error.message).toContain(firstBaseShard());
      expect(body.error.code).toBe('shard_corrupt');
      expect(body.error.type).toBe('service_unavailable');
    }
  });

  it('a missing shard → 503 naming it', async () => {
    const res = await request('missing');
    expect(res.status).toBe(503);
    const body = (await res.json()) as Err;
    expect(body.error.message).toContain(firstBaseShard());
    expect(body.error.code).toBe('shard_missing');
  });

  it('the healthy model still serves, and a repaired shard loads on the next request', async () => {
    const healthy = await request('default');
    expect(healthy.status).toBe(200);
    const text = ((await healthy.json()) as { choices: { text: string }[] }).choices[0].text;
    expect(text.length).toBeGreaterThan(0);
    await repairCorruptModel(w);
    const res = await request('corrupt');
    expect(res.status).toBe(200);
    // The repaired model is the same weights: the same greedy text.
    expect(((await res.json()) as { choices: { text: string }[] }).choices[0].text).toBe(text);
  });
});
