/**
 * The Worker's side of a session object's RPC (protocol.ts): starting a choice's generation, reading its
 * events as they come, and its errors as API errors (also those of a session that went away).
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { EngineError, newUsage } from '../engine/index';
import { engineApiError, type ErrorContext } from './engine-errors';
import { ApiError, typeForStatus } from './openai/errors';
import { COMPLETION_PARAMS, type SessionRequest } from './openai/request';
import type { DoDone, DoError, DoEvent, DoEventSource, DoFailure, DoStart } from './protocol';
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
  if (!started.ok) throw failed(started, req);
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
export function failed(r: DoFailure, ctx: ErrorContext = NO_REQUEST): ApiError {
  return apiError(r.error, ctx);
}

/** A session object's error as the client gets it: the engine's worded with the client's parameter names. */
export function apiError(e: DoError, ctx: ErrorContext): ApiError {
  if (e.kind === 'engine') return engineApiError(new EngineError(e.code, e.message, e.detail), ctx);
  // The session object's own errors have the type of their status (openai/errors.ts).
  return new ApiError(e.status as ContentfulStatusCode, e.message, typeForStatus(e.status), e.param, e.code, e.headers ?? {});
}

/** What an error about no generation request in particular is worded against. */
const NO_REQUEST: ErrorContext = { params: COMPLETION_PARAMS, continue: false, fitMaxTokens: true };
