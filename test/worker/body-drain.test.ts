/**
 * Bodies the worker answers before reading them (an unknown route, a wrong method, a body over the limit):
 * the client must get its answer, never a reset, and its keep-alive connection must stay usable. Chunked
 * bodies in small pieces are the hard case: thousands of reads, and hono's body limit gives up holding a
 * reader on the stream.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startWorker, type Worker } from './harness';

let w: Worker;
beforeAll(async () => {
  w = await startWorker(inject('workerBundleDir'), { vars: { MODEL_NAMES: 'default' } });
});
afterAll(async () => {
  await w?.dispose();
});

/** `bytes` sent chunked in pieces of `piece` bytes; resolves with the status, or the network error's code. */
async function send(method: string, path: string, bytes: Uint8Array, piece: number, key?: string): Promise<number | string> {
  let at = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, (at += piece)));
    },
  });
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
  try {
    const res = await fetch(new URL(path, w.url), { method, headers, body, duplex: 'half' } as RequestInit);
    await res.text();
    return res.status;
  } catch (err) {
    return (err as { cause?: { code?: string } }).cause?.code ?? String(err);
  }
}

const json = (promptChars: number) => new TextEncoder().encode(JSON.stringify({ model: 'default', prompt: 'x'.repeat(promptChars) }));

describe('request bodies answered before they are read', () => {
  // Each case twice in a row: fetch reuses the connection, so a connection left broken shows as a reset.
  // 150 kB in 7-byte pieces: over 10,000 reads (workerd's cap on a worker's pending timers), and more left
  // unread than workerd drains by itself.
  it.each([
    ['a wrong method', 'PATCH', '/v1/chat/completions', json(150_000), 7, undefined, 405],
    ['an unknown route', 'POST', '/nope', json(150_000), 7, undefined, 404],
    ['no API key', 'POST', '/v1/completions', json(150_000), 7, undefined, 401],
    ['a chunked body over the 256 KiB limit', 'POST', '/v1/completions', json(270_000), 7, 'sk-alice', 413],
    ['a 1 MB chunked body', 'POST', '/v1/completions', json(1_000_000), 1024, 'sk-alice', 413],
  ])('%s: answered, and the connection stays usable', async (_what, method, path, bytes, piece, key, status) => {
    const got: (number | string)[] = [];
    for (let i = 0; i < 2; i++) got.push(await send(method, path, bytes, piece, key));
    expect(got).toEqual([status, status]);
    expect((await w.fetch('/health')).status).toBe(200);
  });

  it('a client that never stops sending still gets its answer', async () => {
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        await new Promise((r) => setTimeout(r, 20));
        c.enqueue(new Uint8Array([32]));
      },
    });
    const res = await fetch(new URL('/nope', w.url), { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(404);
    expect((await res.json()) as unknown).toMatchObject({ error: { code: 'unknown_url' } });
  });
});
