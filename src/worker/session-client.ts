/**
 * The Worker's side of a session object's RPC (protocol.ts): starting a choice's generation, reading its
 * events as they come, and the errors of a session that went away.
 */
import { newUsage } from '../engine/index';
import { ApiError } from './openai/errors';
import type { SessionRequest } from './openai/request';
import type { DoDone, DoEvent, DoEventSource, DoFailure, DoStart } from './protocol';
import type { SessionDO } from './session-do';

/** One choice being generated: its start, its events, and how to stop it. */
export interface Job {
  start: DoStart;
  events: AsyncGenerator<DoEvent>;
  cancel: () => void;
}

/** Starts a choice in its session object; with `echo`, the prompt's text comes first, as if generated. */
export async function startJob(stub: DurableObjectStub<SessionDO>, req: SessionRequest): Promise<Job> {
  let started: Awaited<ReturnType<typeof stub.generate>>;
  try {
    started = await stub.generate(req);
  } catch {
    throw interrupted(); // the object was reset before it answered
  }
  if (!started.ok) throw failed(started);
  const { events, cancel } = readEvents(started.events);
  return { start: started.start, events: req.echo ? prepend({ type: 'tokens', text: started.start.echoText ?? '' }, events) : events, cancel };
}

/**
 * The session's events as they come (batches over RPC). `cancel` (the client is gone) stops the engine at
 * the next round boundary; the source is disposed of once read or cancelled.
 */
export function readEvents(source: DoEventSource & Partial<Disposable>): { events: AsyncGenerator<DoEvent>; cancel: () => void } {
  let finished = false;
  const dispose = () => {
    try {
      source[Symbol.dispose]?.();
    } catch {
      // already gone
    }
  };
  const cancel = () => {
    if (finished) return;
    finished = true;
    void Promise.resolve(source.cancel()).catch(() => {}).finally(dispose);
  };
  async function* events(): AsyncGenerator<DoEvent> {
    try {
      for (;;) {
        const batch = await source.next();
        if (batch.length === 0) break;
        yield* batch;
      }
      if (!finished) {
        finished = true;
        dispose();
      }
    } finally {
      cancel();
    }
  }
  return { events: events(), cancel };
}

/** `first`, then the events of `rest`. */
async function* prepend(first: DoEvent, rest: AsyncGenerator<DoEvent>): AsyncGenerator<DoEvent> {
  yield first;
  yield* rest;
}

/** The events of `source`, each shown to `see` first. */
export async function* tap(source: AsyncGenerator<DoEvent>, see: (ev: DoEvent) => void): AsyncGenerator<DoEvent> {
  for await (const ev of source) {
    see(ev);
    yield ev;
  }
}

/** A choice that never ran: the earlier choices used up the request's rounds. */
export function skippedChoice(): DoDone {
  return { type: 'done', finishReason: 'rounds', usage: newUsage(0), sessionTokens: 0 };
}

/** The session's stream broke before its last event: nothing of this request was kept (requests are atomic). */
export function interrupted(): ApiError {
  return new ApiError(503, 'The session was interrupted before the request finished (for example, its object was evicted). ' +
    'Nothing of this request was kept; retry it.', 'service_unavailable', null, 'session_interrupted', { 'retry-after': '1' });
}

/** A session method's failure as the error the client gets (with its Retry-After, if any). */
export function failed(r: DoFailure): ApiError {
  return ApiError.fromBody(r.error.status, r.error.body, r.error.headers ?? {});
}
