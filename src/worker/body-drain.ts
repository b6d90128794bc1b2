/**
 * A request answered before its body was read (an unknown path, a wrong method or key, a refused
 * parameter) still has its body on the way: closing on a client that is still writing makes it fail with
 * a broken pipe before it reads the answer. Read what is left, up to the body limit, before answering.
 */
import type { MiddlewareHandler } from 'hono';

/** A client still sending after this long gets its answer anyway. */
const DRAIN_MS = 2_000;

export function drainUnreadBody(limitBytes: number): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const body = c.req.raw.body;
    if (c.res.status < 400 || !body || c.req.raw.bodyUsed || body.locked) return;
    const reader = body.getReader();
    const deadline = Date.now() + DRAIN_MS;
    let read = 0;
    try {
      while (read <= limitBytes && Date.now() < deadline) {
        const r = await Promise.race([reader.read(), new Promise<null>((res) => setTimeout(() => res(null), Math.max(1, deadline - Date.now())))]);
        if (r === null) break;
        if (r.done) return;
        read += r.value.byteLength;
      }
      await reader.cancel();
    } catch {
      // the client went away: nothing to answer
    }
  };
}
