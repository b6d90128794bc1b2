/**
 * Non-streaming responses written while they are generated. A response is an object (openai/format.ts)
 * whose text may be a TextStream and whose later fields may be Promises; jsonPieces writes it as
 * JSON.stringify would, each piece of text as it arrives. Writing as we go is how a disconnect is noticed:
 * the write to a gone client fails and cancels the session's stream, so the engine stops at the next round
 * boundary (the client's request.signal does the same where the runtime delivers it).
 */
import type { Context } from 'hono';
import type { ApiError } from './openai/errors';
import type { Later } from './openai/format';
import type { DoDone, DoError, DoEvent } from './protocol';
import { interrupted, type Job } from './session-client';

/** A string value whose text arrives in pieces. */
export class TextStream {
  constructor(readonly pieces: AsyncIterable<string>) {}
}

/** Where the JSON written so far should go out: after each piece of streamed text. */
const FLUSH = Symbol('flush');

/**
 * `value` as JSON text, in pieces, byte for byte what JSON.stringify gives for the value with every
 * Promise resolved and every TextStream's pieces joined. Plain values (no toJSON) only.
 */
export async function* jsonPieces(value: unknown): AsyncGenerator<string | typeof FLUSH> {
  const v = value instanceof Promise ? await value : value;
  if (v instanceof TextStream) {
    yield '"';
    for await (const piece of v.pieces) {
      if (!piece) continue;
      yield JSON.stringify(piece).slice(1, -1);
      yield FLUSH;
    }
    yield '"';
  } else if (Array.isArray(v)) {
    yield '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) yield ',';
      const item = v[i] instanceof Promise ? await v[i] : v[i];
      if (item === undefined || typeof item === 'function') yield 'null';
      else yield* jsonPieces(item);
    }
    yield ']';
  } else if (v !== null && typeof v === 'object') {
    yield '{';
    let first = true;
    for (const [key, raw] of Object.entries(v)) {
      const item = raw instanceof Promise ? await raw : raw;
      if (item === undefined || typeof item === 'function') continue;
      yield `${first ? '' : ','}${JSON.stringify(key)}:`;
      first = false;
      yield* jsonPieces(item);
    }
    yield '}';
  } else {
    yield JSON.stringify(v);
  }
}

/** The response object of one choice, from its text (plain or streamed) and its final event. */
export type RenderOne = (text: string | TextStream, done: Later<DoDone>) => unknown;

/**
 * One choice, its text written as it comes. Until the first text arrives nothing is committed, so every
 * error up to then has its own status; a failure after that (the session object reset, its save failed)
 * ends the body early, which clients see as a broken connection, and retrying it is safe (an interrupted
 * request leaves the session as it was).
 */
export async function jsonAsGenerated(
  c: Context,
  render: RenderOne,
  events: AsyncGenerator<DoEvent>,
  shape: (text: string) => string,
  cancel: () => void,
  toError: (e: DoError) => ApiError,
): Promise<Response> {
  const signal = c.req.raw.signal;
  signal.addEventListener('abort', cancel);
  let first = '';
  try {
    // 1. Until the first text: nothing sent, errors are ordinary error responses.
    for (;;) {
      const r = await events.next().catch(() => {
        throw interrupted();
      });
      if (r.done) throw interrupted();
      const ev = r.value;
      if (ev.type === 'error') throw toError(ev);
      if (ev.type === 'done') return c.newResponse(JSON.stringify(render('', ev)), 200, { 'content-type': 'application/json' });
      if (ev.type === 'tokens' && (first = shape(ev.text))) break;
    }
  } catch (err) {
    signal.removeEventListener('abort', cancel);
    throw err;
  }
  // 2. Committed to 200: the object up to the text, the text as it comes, then the fields its end settles.
  let settle!: (done: DoDone) => void;
  const done = new Promise<DoDone>((resolve) => (settle = resolve));
  async function* text(): AsyncGenerator<string> {
    yield first;
    for await (const ev of events) {
      if (ev.type === 'tokens') yield shape(ev.text);
      else if (ev.type === 'done') return settle(ev);
      else if (ev.type === 'error') throw toError(ev);
    }
    throw interrupted();
  }
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const enc = new TextEncoder();
  const pump = async () => {
    try {
      let out = '';
      for await (const piece of jsonPieces(render(new TextStream(text()), done))) {
        if (piece !== FLUSH) out += piece;
        else if (out) {
          await writer.write(enc.encode(out));
          out = '';
        }
      }
      await writer.write(enc.encode(out));
      await writer.close();
    } catch (err) {
      if (!signal.aborted) console.error('non-streaming response cut short', (err as Error)?.message ?? err);
      cancel(); // the client is gone or the session failed: stop the engine
      await writer.abort(new Error('response cut short')).catch(() => {});
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  };
  c.executionCtx.waitUntil(pump());
  return streamingJson(c, readable);
}

/**
 * A response of several choices, written when the last one is done: JSON cannot be cut into choices that
 * are still to come, so the body starts with one space per round (JSON allows leading whitespace) while they
 * generate. Those writes are how a client that left is noticed where the runtime does not deliver
 * request.signal: the write fails, the running choice is cancelled (its engine stops at the next round
 * boundary), and no further choice starts. Until the first space, errors have their own status; after it,
 * a failure cuts the body short, as with one choice (jsonAsGenerated).
 */
export async function jsonWhenDone(c: Context, run: (ctl: { running(job: Job): void; beat(): Promise<void> }) => Promise<unknown>): Promise<Response> {
  const signal = c.req.raw.signal;
  let job: Job | null = null;
  let gone = false;
  const leave = () => {
    gone = true;
    job?.cancel();
  };
  signal.addEventListener('abort', leave);
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const enc = new TextEncoder();
  let commit!: () => void;
  const committed = new Promise<null>((resolve) => (commit = () => resolve(null)));
  let isCommitted = false;
  const result = run({
    running: (j) => {
      job = j;
      if (gone) j.cancel();
    },
    beat: async () => {
      if (gone) throw interrupted();
      if (!isCommitted) {
        isCommitted = true;
        commit();
      }
      await writer.write(enc.encode(' ')); // rejects once the client is gone
    },
  }).then((body) => JSON.stringify(body));
  let early: { json: string } | null;
  try {
    early = await Promise.race([committed, result.then((json) => ({ json }))]);
  } catch (err) {
    signal.removeEventListener('abort', leave);
    throw err;
  }
  if (early) {
    signal.removeEventListener('abort', leave);
    return c.newResponse(early.json, 200, { 'content-type': 'application/json' });
  }
  c.executionCtx.waitUntil(
    (async () => {
      try {
        await writer.write(enc.encode(await result));
        await writer.close();
      } catch (err) {
        if (!signal.aborted) console.error('non-streaming response cut short', (err as Error)?.message ?? err);
        leave();
        await writer.abort(new Error('response cut short')).catch(() => {});
      } finally {
        signal.removeEventListener('abort', leave);
      }
    })(),
  );
  return streamingJson(c, readable);
}

/** A JSON body written as it goes; not compressed on the way (Cloudflare's front, like the local one, would otherwise buffer it). */
function streamingJson(c: Context, body: ReadableStream<Uint8Array>): Response {
  return c.newResponse(body, 200, { 'content-type': 'application/json', 'content-encoding': 'identity', 'cache-control': 'no-transform' });
}
