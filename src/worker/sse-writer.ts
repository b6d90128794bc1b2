/**
 * Streamed responses (SSE): every event is one data line holding one object (the route adapter's chunks,
 * an error as OpenAI streams it: {"error": {...}}), then `[DONE]`. Choices follow one another.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { ApiError } from './openai/errors';
import { mergeDone, toExtension, toFinishReason, toUsage } from './openai/format';
import type { DoDone } from './protocol';
import { apiError, interrupted, skippedChoice, type Job } from './session-client';
import type { Generation } from './generation';

export function streamChoices(c: Context, g: Generation): Response {
  const { adapter, ids, req } = g;
  const usage = req.includeUsage ? null : undefined; // OpenAI sends usage: null on every chunk when asked
  return streamSSE(c, async (sse) => {
    let current = g.first;
    sse.onAbort(() => current.cancel()); // cancels the DO's generation → the engine stops within one round
    const send = (obj: unknown) => sse.writeSSE({ data: JSON.stringify(obj) });
    const dones: DoDone[] = [];
    for (let k = 0; k < req.choices; k++) {
      if (k > 0) {
        let next: Job | null;
        try {
          next = await g.start(k);
        } catch (err) {
          await send((err instanceof ApiError ? err : interrupted()).toJSON());
          break;
        }
        if (!next) {
          dones.push(skippedChoice());
          await send(adapter.finish(ids, k, 'length', usage));
          continue;
        }
        current = next;
      }
      if (sse.aborted) return current.cancel();
      const shape = g.shaper();
      const opening = adapter.opening(ids, k, usage);
      if (opening) await send(opening);
      let ended = false;
      let failed = false;
      let offset = 0;
      try {
        for await (const ev of current.events) {
          if (sse.aborted) return;
          if (ev.type === 'tokens') {
            const text = shape(ev.text);
            const lp = ev.logprobs?.length ? g.logprobs(ev.logprobs, offset) : null;
            offset += text.length;
            if (!text && !lp) continue;
            await send(adapter.text(ids, k, text, lp, usage));
          } else if (ev.type === 'done') {
            ended = true;
            g.spend(ev);
            dones.push(ev);
            await send(adapter.finish(ids, k, toFinishReason(ev.finishReason), usage));
          } else if (ev.type === 'error') {
            ended = true;
            failed = true;
            await send(apiError(ev, req).toJSON()); // OpenAI streams errors as a data line carrying {"error": {...}}
          }
        }
      } catch {
        // The session object went away mid-stream (evicted, reset): the event source failed.
      }
      if (sse.aborted) return;
      if (!ended) {
        await send(interrupted().toJSON());
        failed = true;
      }
      if (failed) break;
    }
    if (req.includeUsage && dones.length === req.choices) {
      const done = mergeDone(dones);
      await send(adapter.usage(ids, toUsage(done.usage), toExtension(done)));
    }
    await sse.writeSSE({ data: '[DONE]' });
  });
}
