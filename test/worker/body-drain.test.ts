/**
 * Bodies the worker answers before reading them (an unknown route, a wrong method, a body over the limit):
 * the client must get its answer, never a reset, and its keep-alive connection must stay usable; while such a
 * body is read, the isolate keeps answering other requests. Chunked bodies in small pieces are the hard case:
 * hundreds of thousands of chunks, and hono's body limit gives up holding a reader on the stream.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startWorker, type Worker } from './harness';
import { DRAIN_MS, LINGER_MS } from '../../src/worker/body-drain';

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

  // Written straight to a socket, 1-byte chunks arrive faster than JavaScript takes them one read at a time
  // (0.1-0.2 ms a read). Read that way, the drain outlasted its 5 s; and since workerd's clock stands still
  // while its event loop is never idle, its 5 s keep-alive wait after the answer had already run out, so the
  // connection was closed right after the answer even for a body read to its end (the JSON route's 400).
  it.each([
    ['an unknown route', 500_000, 'POST /nope', 404],
    ['a chunked body over the 256 KiB limit', 500_000, 'POST /v1/completions', 413],
    ['a body read to its end (not JSON)', 200_000, 'POST /v1/completions', 400],
  ])('%s, %i 1-byte chunks sent at once: answered, and the same connection answers the next request', async (_what, n, request, status) => {
    expect(await onOneConnection([tinyChunks(request, n), HEALTH])).toEqual([status, 200]);
  });

  // While a client's bytes arrive faster than they are read, workerd's event loop never runs dry and serves
  // nothing else. Read one chunk at a time, this body kept the isolate from answering anyone for minutes;
  // read in large pieces without pausing between them, still for 1-3 s.
  it('while 1,000,000 1-byte chunks are drained, the isolate answers other requests within 1 s', async () => {
    let drained = false;
    const big = onOneConnection([tinyChunks('POST /nope', 1_000_000)]).finally(() => (drained = true));
    const waits: number[] = [];
    while (!drained && waits.length < 40) {
      await new Promise((r) => setTimeout(r, 250));
      const t0 = Date.now();
      const health = await Promise.race([onOneConnection([HEALTH]), new Promise((r) => setTimeout(() => r('no answer in 5 s'), 5_000))]);
      expect(health).toEqual([200]);
      waits.push(Date.now() - t0);
    }
    expect(await big).toEqual([404]);
    expect(waits.length).toBeGreaterThan(0);
    expect(Math.max(...waits), `GET /health waits (ms): ${waits.join(' ')}`).toBeLessThan(1_000);
  });

  // fetch cannot send them, other clients can: they are answered as if they had no body.
  it('GET and HEAD with a body: answered as without one, and the connection stays usable', async () => {
    const withBody = (method: string, framing: string, body: string) =>
      Buffer.from(`${method} /health HTTP/1.1\r\nHost: localhost\r\n${framing}\r\n\r\n${body}`);
    const statuses = await onOneConnection([
      withBody('GET', 'Content-Length: 5', 'hello'),
      withBody('GET', 'Transfer-Encoding: chunked', '5\r\nhello\r\n0\r\n\r\n'),
      withBody('HEAD', 'Content-Length: 5', 'hello'),
      HEALTH,
    ]);
    expect(statuses).toEqual([200, 200, 200, 200]);
  });

  // The answer comes after DRAIN_MS, while the client is still writing. Closing then would make the client's
  // TCP stack reset the connection, and a reset throws away whatever of the answer the client has not read
  // yet: the body is read LINGER_MS longer after the answer, so the answer is read before the close.
  it('a client that never stops sending gets its answer, and the connection stays open a while after it', async () => {
    const got = await endlessClient('POST /nope');
    expect(got.status).toBe(404);
    expect(JSON.parse(got.body)).toMatchObject({ error: { code: 'unknown_url' } });
    expect(got.answerMs).toBeGreaterThanOrEqual(DRAIN_MS - 100);
    expect(got.openAfterAnswerMs, 'the connection closed right after the answer').toBeGreaterThanOrEqual(LINGER_MS / 2);
  });
});

/**
 * `request` ("POST /path") on a raw socket with a chunked body that never ends (a 1-byte chunk every 20 ms,
 * write errors ignored: only what comes back counts); resolves once the connection ends with the answer's
 * status and body, when it arrived and how long the connection stayed open after it.
 */
function endlessClient(request: string): Promise<{ status: number; body: string; answerMs: number; openAfterAnswerMs: number }> {
  const { hostname, port } = new URL(w.url);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let got = Buffer.alloc(0);
    let answer: ReturnType<typeof wholeAnswer> = null;
    let answeredAt = 0;
    const sock = connect(Number(port), hostname, () => {
      sock.write(`${request} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
    });
    const ticker = setInterval(() => sock.writable && sock.write('1\r\nx\r\n', () => {}), 20);
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (!answer && (answer = wholeAnswer(got))) answeredAt = Date.now();
    });
    const end = () => {
      clearInterval(ticker);
      clearTimeout(deadline);
      sock.destroy();
      if (!answer) return reject(new Error(`no complete answer before the connection ended (${got.length} bytes)`));
      resolve({
        status: answer.status,
        body: answer.body.toString(),
        answerMs: answeredAt - t0,
        openAfterAnswerMs: Date.now() - answeredAt,
      });
    };
    const deadline = setTimeout(() => end(), DRAIN_MS + 3 * LINGER_MS);
    sock.on('error', () => end());
    sock.on('close', () => end());
  });
}

/**
 * The first answer in `buf` once it is whole (its body by Content-Length, none for a HEAD request): status,
 * body and its length in bytes; null until then.
 */
function wholeAnswer(buf: Buffer, headRequest = false): { status: number; body: Buffer; bytes: number } | null {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const head = buf.subarray(0, headEnd).toString('latin1');
  const bytes = headEnd + 4 + (headRequest ? 0 : Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0));
  if (buf.length < bytes) return null;
  return { status: Number(head.split(' ')[1]), body: buf.subarray(headEnd + 4, bytes), bytes };
}

const HEALTH = Buffer.from('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');

/** `request` ("POST /path") with a chunked body of `n` 1-byte chunks, as bytes for the socket. */
function tinyChunks(request: string, n: number): Buffer {
  const head = `${request} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer sk-alice\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
  const chunk = Buffer.from('1\r\nx\r\n');
  return Buffer.concat([Buffer.from(head), Buffer.alloc(n * chunk.length).fill(chunk), Buffer.from('0\r\n\r\n')]);
}

/**
 * Sends each request on one socket once the previous answer is complete (Content-Length bodies, none for HEAD);
 * resolves with their statuses, and what ended the connection early in place of the missing ones.
 */
function onOneConnection(requests: Buffer[]): Promise<(number | string)[]> {
  const { hostname, port } = new URL(w.url);
  return new Promise((resolve) => {
    const statuses: (number | string)[] = [];
    let got = Buffer.alloc(0);
    const sock = connect(Number(port), hostname, () => sock.write(requests[0]));
    const end = (why: string) => {
      if (sock.destroyed) return;
      if (statuses.length < requests.length) statuses.push(why);
      sock.destroy();
      resolve(statuses);
    };
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      for (;;) {
        const answer = wholeAnswer(got, requests[statuses.length].subarray(0, 5).toString() === 'HEAD ');
        if (!answer) return;
        statuses.push(answer.status);
        got = got.subarray(answer.bytes);
        if (statuses.length === requests.length) return end('');
        sock.write(requests[statuses.length]);
      }
    });
    sock.on('error', (e) => end((e as { code?: string }).code ?? e.message));
    sock.on('end', () => end('closed'));
  });
}
