/**
 * A generation request once admitted: its choices one after another, each in a session object of its own
 * (or the client's session), bounded together by the tenant's rounds, and answered by the route's adapter
 * through one of the two writers: SSE (sse-writer.ts) or JSON (json-writer.ts).
 */
import type { Context } from 'hono';
import { jsonAsGenerated, jsonWhenDone } from './json-writer';
import { adapterFor, replyShaper, type RouteAdapter } from './openai/adapters';
import { ApiError } from './openai/errors';
import { later, mergeDone, type ChoiceOut, type Ids } from './openai/format';
import { sessionRequest, type ApiRequest } from './openai/request';
import type { DoDone, DoLogprob, FaultSpec } from './protocol';
import { apiError, interrupted, skippedChoice, startJob, tap, type Job } from './session-client';
import type { SessionDO } from './session-do';
import { streamChoices } from './sse-writer';
import type { Tenant } from './tenants';

/** A request's choices as the writers run them. */
export interface Generation {
  req: ApiRequest;
  adapter: RouteAdapter;
  ids: Ids;
  /** Choice 0, started before the response is: its errors have their own status. */
  first: Job;
  /** Choice k (k > 0), or null when the earlier choices used up the request's rounds (it ends at once). */
  start(k: number): Promise<Job | null>;
  /** A finished choice: its rounds count against the later ones. */
  spend(done: DoDone): void;
  /** Some tokens' log-probabilities as the route writes them, or null when not asked for. */
  logprobs(lps: readonly DoLogprob[], offset: number): unknown;
  /** A fresh function for a choice's text as the client sees it. */
  shaper(): (text: string) => string;
}

export interface GenerationContext {
  tenant: Tenant;
  fault: FaultSpec | undefined;
  /** The DO of a tenant's session. */
  stub(sessionId: string): DurableObjectStub<SessionDO>;
}

/** Starts the first choice and returns the request's Generation. */
export async function startGeneration(req: ApiRequest, ctx: GenerationContext): Promise<Generation> {
  const { tenant } = ctx;
  const meter = tenant.rpm > 0 || tenant.tpm > 0 ? { rpm: tenant.rpm, tpm: tenant.tpm } : null;
  // max_rounds bounds the whole request: each choice gets what the earlier ones left.
  let roundsLeft = tenant.max_rounds;
  const start = async (k: number): Promise<Job | null> => {
    if (roundsLeft <= 0) return null;
    // Ephemeral requests get a DO of their own (random name, nothing persisted).
    const stub = ctx.stub(req.sessionId ?? `~ephemeral:${crypto.randomUUID()}`);
    return startJob(stub, sessionRequest(req, k, { tenant, maxRounds: roundsLeft, meter, fault: ctx.fault }));
  };
  const first = (await start(0))!;
  const adapter = adapterFor(req.route);
  return {
    req,
    adapter,
    ids: { id: `${adapter.idPrefix}-${crypto.randomUUID().replace(/-/g, '')}`, created: Math.floor(Date.now() / 1000), model: req.model },
    first,
    start,
    spend: (done) => {
      roundsLeft -= done.usage.rounds;
    },
    logprobs: (lps, offset) => (req.logprobs === null ? null : adapter.logprobs(lps, offset)),
    shaper: () => replyShaper(req.freshReply),
  };
}

/** The response: streamed (SSE), one choice as it is generated, or several when the last is done (JSON). */
export function respond(c: Context, g: Generation): Promise<Response> | Response {
  if (g.req.stream) return streamChoices(c, g);
  return g.req.choices === 1 ? oneChoice(c, g) : severalChoices(c, g);
}

/** One choice, written as it is generated. */
function oneChoice(c: Context, g: Generation): Promise<Response> {
  const lps: DoLogprob[] = [];
  const events = tap(g.first.events, (ev) => {
    if (ev.type === 'tokens' && ev.logprobs) lps.push(...ev.logprobs);
  });
  return jsonAsGenerated(
    c,
    (text, done) => {
      const finishReason = later(done, (d) => d.finishReason);
      const logprobs = later(done, () => g.logprobs(lps, 0)); // all of them are in once it is done
      return g.adapter.response(g.ids, [{ index: 0, text, finishReason, logprobs }], done);
    },
    events,
    g.shaper(),
    g.first.cancel,
    (e) => apiError(e, g.req),
  );
}

/** Several choices: generated one after another, answered together. */
function severalChoices(c: Context, g: Generation): Promise<Response> {
  return jsonWhenDone(c, async (ctl) => {
    const outs: ChoiceOut[] = [];
    const dones: DoDone[] = [];
    for (let k = 0; k < g.req.choices; k++) {
      const job = k === 0 ? g.first : await g.start(k);
      if (!job) {
        dones.push(skippedChoice());
        outs.push({ index: k, text: '', finishReason: 'rounds', logprobs: g.logprobs([], 0) });
        continue;
      }
      ctl.running(job);
      const shape = g.shaper();
      let text = '';
      const lps: DoLogprob[] = [];
      let done: DoDone | null = null;
      try {
        for await (const ev of job.events) {
          if (ev.type === 'tokens') {
            text += shape(ev.text);
            if (ev.logprobs) lps.push(...ev.logprobs);
            await ctl.beat();
          } else if (ev.type === 'done') done = ev;
          else if (ev.type === 'error') throw apiError(ev, g.req);
        }
      } catch (err) {
        job.cancel();
        throw err instanceof ApiError ? err : interrupted();
      }
      if (!done) throw interrupted();
      g.spend(done);
      dones.push(done);
      outs.push({ index: k, text, finishReason: done.finishReason, logprobs: g.logprobs(lps, 0) });
    }
    return g.adapter.response(g.ids, outs, mergeDone(dones));
  });
}
