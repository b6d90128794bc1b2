/**
 * A request answered before its body was read (an unknown path, a wrong method or key, a refused
 * parameter, a body over the limit) still has its body on the way: closing on a client that is still
 * writing resets the connection before it reads the answer. Read and discard what is left before
 * answering, as HTTP servers' "lingering close" does, within a byte and a time bound so that a client
 * that never stops cannot hold the request open.
 *
 * The body is read in large pieces (a BYOB reader's readAtLeast: the runtime fills the buffer across
 * transfer-encoding chunks natively). Read chunk by chunk, a body sent in tiny chunks costs a JavaScript
 * round trip per chunk (0.1-0.2 ms): 300,000 1-byte chunks took 55 s. And while a client's bytes arrive
 * faster than they are read, workerd's event loop never runs dry: it runs no timers, accepts no other
 * connection and its clock stands still. The whole isolate stopped answering for that long, and the
 * connection was closed right after the answer (workerd's 5 s keep-alive wait, measured from the stale
 * clock, had already run out), so the client's next request on it was reset. Between pieces the reads
 * wait for a zero timer, which lets the event loop serve everything else first.
 */
import type { Context, MiddlewareHandler } from 'hono';

/** A client still sending after this long gets its answer anyway; its connection is closed LINGER_MS later. */
export const DRAIN_MS = 5_000;
/**
 * After such a late answer the body is still read this long before the connection is closed. Closing on a
 * client that is still writing makes its TCP stack reset the connection, and a reset discards whatever of
 * the answer the client has not read yet (HTTP servers' "lingering close" waits the same way).
 */
export const LINGER_MS = 2_000;
/** Bytes read and discarded at most (beyond the body limit: a 413 body is drained too). */
export const DRAIN_MAX_BYTES = 4 * 1024 * 1024;
/** Bytes per read, both for the app and for the drain. */
const PIECE = 64 * 1024;

/** workerd's BYOB reader: readAtLeast(min, view) fills `view` with at least `min` bytes, fewer only at the end. */
type PieceReader = ReadableStreamBYOBReader & {
  readAtLeast<T extends ArrayBufferView>(min: number, view: T): Promise<ReadableStreamReadResult<T>>;
};

/** Resolves once the event loop has served what else is waiting (timers run only when it is idle). */
const yieldToOthers = () => new Promise((resolve) => setTimeout(resolve, 0));

export function drainUnreadBody(): MiddlewareHandler {
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return next();
    const reader = body.getReader({ mode: 'byob' }) as PieceReader;
    // No GET or HEAD route reads a body, and a Request with one cannot be built (the constructor throws).
    if (c.req.method === 'GET' || c.req.method === 'HEAD') {
      await next();
      return drainThenAnswer(c, reader);
    }
    // The app reads the body through this forwarding stream, so the original stays ours to drain
    // whatever the app did with its copy (hono's bodyLimit keeps a reader locked on what it gave up on).
    let ended = false;
    const forward = new ReadableStream<Uint8Array>(
      {
        async pull(ctrl) {
          await yieldToOthers();
          const r = await reader.readAtLeast(PIECE, new Uint8Array(PIECE));
          if (r.value?.byteLength) ctrl.enqueue(r.value);
          if (r.done) {
            ended = true;
            ctrl.close();
          }
        },
      },
      { highWaterMark: 0 },
    );
    c.req.raw = new Request(c.req.raw, { body: forward });
    await next();
    // Past the bounds the rest is left unread and the runtime closes the connection after the answer (a
    // Worker cannot add `Connection: close` to it: the runtime sets that header itself).
    if (!ended) await drainThenAnswer(c, reader);
  };
}

/**
 * Drains for up to DRAIN_MS before the answer goes out. A body still arriving then is read LINGER_MS longer
 * while the answer is sent: its bytes go out at once with their Content-Length, so the client has it whole,
 * but its stream stays open until the drain ends (the runtime closes the connection only after the answer's
 * stream ends, and does so even while a `waitUntil` still reads the body).
 */
async function drainThenAnswer(c: Context, reader: PieceReader): Promise<void> {
  const drained = drain(reader, DRAIN_MS + LINGER_MS);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, DRAIN_MS, 'late')));
  const first = await Promise.race([drained, late]);
  clearTimeout(timer);
  const answer = c.res;
  if (first !== 'late' || answer.body === null) return;
  const bytes = new Uint8Array(await answer.arrayBuffer());
  const { readable, writable } = new FixedLengthStream(bytes.byteLength);
  const writer = writable.getWriter();
  void writer.write(bytes);
  c.executionCtx.waitUntil(drained.finally(() => writer.close()));
  c.res = new Response(readable, answer);
}

/**
 * Reads `reader` to its end, DRAIN_MAX_BYTES or `ms`, whichever comes first. One timer for the whole
 * drain (a timer per read would pile up: workerd caps a worker's pending timers).
 */
async function drain(reader: PieceReader, ms: number): Promise<void> {
  // Cancelling ends a pending read with `done`, so the deadline needs no race against each read.
  const timer = setTimeout(() => reader.cancel().catch(() => {}), ms);
  let buffer = new Uint8Array(PIECE);
  let read = 0;
  try {
    for (;;) {
      await yieldToOthers();
      const r = await reader.readAtLeast(PIECE, buffer);
      if (r.done) return;
      read += r.value.byteLength;
      if (read > DRAIN_MAX_BYTES) return void (await reader.cancel());
      buffer = new Uint8Array(r.value.buffer); // the read took the buffer over; read into it again
    }
  } catch {
    // the client went away: nothing to answer
  } finally {
    clearTimeout(timer);
  }
}
