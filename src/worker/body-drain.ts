/**
 * A request answered before its body was read (an unknown path, a wrong method or key, a refused
 * parameter, a body over the limit) still has its body on the way: closing on a client that is still
 * writing resets the connection before it reads the answer. Read and discard what is left before
 * answering, as HTTP servers' "lingering close" does, within a byte and a time bound so that a client
 * that never stops cannot hold the request open.
 */
import type { MiddlewareHandler } from 'hono';

/** A client still sending after this long gets its answer anyway (and may see a reset). */
export const DRAIN_MS = 5_000;
/** Bytes read and discarded at most (beyond the body limit: a 413 body is drained too). */
export const DRAIN_MAX_BYTES = 4 * 1024 * 1024;

export function drainUnreadBody(): MiddlewareHandler {
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return next();
    // The app reads the body through this forwarding stream, so the original stays ours to drain
    // whatever the app did with its copy (hono's bodyLimit keeps a reader locked on what it gave up on).
    const reader = body.getReader();
    let ended = false;
    const forward = new ReadableStream<Uint8Array>(
      {
        async pull(ctrl) {
          const r = await reader.read();
          if (r.done) {
            ended = true;
            ctrl.close();
          } else ctrl.enqueue(r.value);
        },
      },
      { highWaterMark: 0 },
    );
    c.req.raw = new Request(c.req.raw, { body: forward });
    await next();
    if (!ended && !(await drain(reader))) {
      // The rest of the body is left unread: the connection cannot carry another request.
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set('Connection', 'close');
    }
  };
}

/**
 * Reads `reader` to its end, DRAIN_MAX_BYTES or DRAIN_MS, whichever comes first; true if it reached the end. One timer for the
 * whole drain (a timer per read would pile up: one per chunk, and a 1-byte-chunked body has thousands).
 */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<boolean> {
  // Cancelling ends a pending read with `done`, so the deadline needs no race against each read.
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => {});
  }, DRAIN_MS);
  let read = 0;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return !timedOut;
      read += r.value.byteLength;
      if (read > DRAIN_MAX_BYTES) {
        await reader.cancel();
        return false;
      }
    }
  } catch {
    return false; // the client went away: nothing to answer
  } finally {
    clearTimeout(timer);
  }
}
