/**
 * HTTP layer (Hono): auth → tenant limits → validation (zod) → the session Durable Object → OpenAI shapes.
 * Everything model-specific (tokenising, context length, drafter names) happens in the DO, next to the engine.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { streamSSE } from 'hono/streaming';
import { zValidator } from '@hono/zod-validator';
import type { z } from 'zod';
import { newUsage } from '../engine/index';
import type { Env } from './env';
import { ApiError, badRequest } from './openai/errors';
import { trimReplyStart } from './openai/chat-template';
import { chatRequest, completionRequest, sessionRequest, type ApiRequest } from './openai/request';
import {
  chatChunk,
  chatLogprobs,
  chatResponse,
  completionLogprobs,
  mergeDone,
  type ChoiceOut,
  completionChunk,
  completionResponse,
  toExtension,
  toFinishReason,
  toUsage,
  usageChunk,
  type Ids,
} from './openai/format';
import { ChatCompletionSchema, CompletionSchema, SESSION_ID_RE, type ChatCompletionBody, type CompletionBody } from './openai/schemas';
import type { DoDone, DoEvent, DoEventSource, DoFailure, DoLogprob, DoStart, FaultSpec } from './protocol';
import { authenticate, type Tenant } from './tenants';
import { drainUnreadBody } from './body-drain';
import { formatReset } from './limits';
import type { AdmitResult, RateState } from './rate-limiter';

type AppEnv = { Bindings: Env; Variables: { tenant: Tenant } };

export const app = new Hono<AppEnv>();

/** Models served by this deployment (folders in the R2 bucket). */
export function modelNames(env: Env): string[] {
  return (env.MODEL_NAMES ?? 'default')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

app.use('*', securityHeaders());
app.use('*', drainUnreadBody());

// ------------------------------------------------------------------------------------------- errors
app.onError((err, c) => {
  if (err instanceof ApiError) return err.toResponse();
  if (err instanceof HTTPException) {
    const status = err.status;
    const msg = status === 400 ? `We could not parse the JSON body of your request. (${err.message})` : err.message;
    return new ApiError(status, msg, status === 413 ? 'invalid_request_error' : undefined, null, status === 400 ? 'invalid_json' : null).toResponse();
  }
  console.error('unhandled', err);
  return new ApiError(500, 'Internal server error.', 'server_error').toResponse();
});
// Known paths with the wrong method → 405 naming the allowed ones (hono's middleware, from the routes below).
app.use(
  '*',
  methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) => {
      const allow = methods.join(', ');
      return new ApiError(405, `Method ${c.req.method} is not allowed on ${new URL(c.req.url).pathname} (allowed: ${allow}).`, 'invalid_request_error', null, 'method_not_allowed', {
        allow,
      }).toResponse();
    },
  }),
);
app.notFound((c) => new ApiError(404, `Unknown request URL: ${c.req.method} ${new URL(c.req.url).pathname}.`, 'invalid_request_error', null, 'unknown_url').toResponse());

/** zod failures → 400 in OpenAI's error shape, naming the first offending parameter. */
const validate = <T extends z.ZodType>(schema: T) =>
  zValidator('json', schema, (result) => {
    if (!result.success) {
      const issue = result.error.issues[0];
      const at = issue?.path.length ? issue.path.map(String).join('.') : null;
      if (issue?.code === 'unrecognized_keys') {
        // OpenAI's wording for a parameter the route does not know (e.g. chat's `tools` sent to completions).
        const param = [at, issue.keys[0]].filter(Boolean).join('.');
        return new ApiError(400, `Unrecognized request argument supplied: ${issue.keys.join(', ')}`, 'invalid_request_error', param, 'unknown_parameter').toResponse();
      }
      const message = issue ? `Invalid ${at ?? 'request body'}: ${issue.message}` : 'Invalid request body.';
      return new ApiError(400, message, 'invalid_request_error', at, issue?.code === 'invalid_type' && !at ? 'invalid_json' : 'invalid_value').toResponse();
    }
  });

// ------------------------------------------------------------------------------------------- middleware
/**
 * Headers on every response of the Worker (the page's static files get theirs from public/_headers): no
 * MIME sniffing, no framing, no referrer, and a CSP under which a JSON or error body can do nothing if a
 * browser is made to render it.
 */
function securityHeaders() {
  return async (c: Context<AppEnv>, next: () => Promise<void>) => {
    await next();
    const h = c.res.headers;
    h.set('x-content-type-options', 'nosniff');
    h.set('content-security-policy', "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    h.set('x-frame-options', 'DENY');
    h.set('referrer-policy', 'no-referrer');
  };
}

const auth = async (c: Context<AppEnv>, next: () => Promise<void>) => {
  c.set('tenant', await authenticate(c.req.header('authorization'), c.req.url, c.env.TENANTS, c.env.LOCAL_KEYS === 'loopback'));
  await next();
};

/** The tenant's object (rate-limiter.ts): rate limits, the token meter, the stored sessions. */
function tenantObject(env: Env, tenant: Tenant) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(tenant.name));
}

/** OpenAI's x-ratelimit-* headers for the limits the tenant has (none for a limit that is off). */
function rateHeaders(s: RateState): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [kind, v] of [['requests', s.requests], ['tokens', s.tokens]] as const) {
    if (!v) continue;
    h[`x-ratelimit-limit-${kind}`] = String(v.limit);
    h[`x-ratelimit-remaining-${kind}`] = String(v.remaining);
    h[`x-ratelimit-reset-${kind}`] = formatReset(v.resetMs);
  }
  return h;
}

/**
 * Admits a generation request with the tenant's object: requests and tokens per minute (429 with
 * Retry-After over either) and, for a persistent session, the cap on stored sessions (403 for a new one
 * beyond it). Sets the rate-limit headers of the response.
 */
async function admit(c: Context<AppEnv>, sessionId: string | null): Promise<void> {
  const tenant = c.get('tenant');
  if (tenant.rpm === 0 && tenant.tpm === 0 && sessionId === null) return;
  const r: AdmitResult = await tenantObject(c.env, tenant).admit({ rpm: tenant.rpm, tpm: tenant.tpm }, sessionId === null ? null : { id: sessionId, max: tenant.max_sessions });
  if (!r.ok && r.reason === 'sessions') {
    throw new ApiError(403, `This key may keep at most ${tenant.max_sessions} stored sessions and has ${r.sessions}: delete one (DELETE /v1/sessions/{id}), ` +
      `wait until one expires (${tenant.session_ttl_s} s after its last request), or send the request without a session id.`, 'permission_error', 'session_id', 'session_limit_reached');
  }
  const headers = rateHeaders(r.state);
  if (!r.ok) {
    const what = r.reason === 'requests' ? `${tenant.rpm} requests per minute` : `${tenant.tpm} tokens per minute`;
    throw new ApiError(429, `Rate limit reached: ${what}. Retry after ${r.retryAfter} s.`, 'rate_limit_error', null, r.reason === 'requests' ? 'rate_limit_exceeded' : 'tokens_rate_limit_exceeded', {
      ...headers,
      'retry-after': String(r.retryAfter),
    });
  }
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
}

/** POST bodies must be JSON (curl -d sends form encoding by default; say so instead of "model: required"). */
const jsonOnly = async (c: Context<AppEnv>, next: () => Promise<void>) => {
  const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (!/^application\/([\w.-]+\+)?json$/.test(type)) {
    throw new ApiError(415, `Unsupported Content-Type "${type || '(none)'}": send the body as JSON with Content-Type: application/json.`, 'invalid_request_error', null, 'unsupported_media_type');
  }
  await next();
};

const BODY_LIMIT = 256 * 1024;
const limitBody = bodyLimit({
  maxSize: BODY_LIMIT,
  onError: () => {
    throw new ApiError(413, 'Request body too large (256 KiB max).', 'invalid_request_error', null, 'request_too_large');
  },
});

// ------------------------------------------------------------------------------------------- routes
app.get('/health', (c) => c.json({ status: 'ok', models: modelNames(c.env) }));

app.get('/v1/models', auth, (c) => {
  const tenant = c.get('tenant');
  return c.json({ object: 'list', data: allowedModels(c.env, tenant).map(modelObject) });
});

app.get('/v1/models/:model', auth, (c) => {
  const model = c.req.param('model')!;
  if (!allowedModels(c.env, c.get('tenant')).includes(model)) throw unknownModel(model);
  return c.json(modelObject(model));
});

/**
 * A model's files (manifest.json and its content-hashed shards) for the page's "in this browser" mode: with
 * the tenant's key and only for the models it may use. Nothing model-like is a public static file unless a
 * deployment publishes it on purpose (scripts/build-browser.ts, PUBLISH_MODELS).
 */
app.get('/v1/models/:model/files/:file', auth, async (c) => {
  const model = c.req.param('model')!;
  const file = c.req.param('file')!;
  if (!allowedModels(c.env, c.get('tenant')).includes(model)) throw unknownModel(model);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(file)) throw modelFileNotFound(model, file);
  const obj = await c.env.MODELS.get(`${model}/${file}`);
  if (!obj) throw modelFileNotFound(model, file);
  const manifest = file === 'manifest.json';
  return c.newResponse(obj.body, 200, {
    'content-type': manifest ? 'application/json' : 'application/octet-stream',
    etag: obj.httpEtag,
    // Shards are named by their content hash, so they never change; the manifest names the current ones.
    'cache-control': manifest ? 'private, no-cache' : 'private, max-age=31536000, immutable',
  });
});

app.post('/v1/completions', limitBody, auth, jsonOnly, validate(CompletionSchema), async (c) => {
  const body = c.req.valid('json') as CompletionBody;
  const tenant = c.get('tenant');
  checkModel(c, body.model);
  return generate(c, completionRequest(body, tenant, resolveSessionId(c, body.session_id)));
});

app.post('/v1/chat/completions', limitBody, auth, jsonOnly, validate(ChatCompletionSchema), async (c) => {
  const body = c.req.valid('json') as ChatCompletionBody;
  const tenant = c.get('tenant');
  checkModel(c, body.model);
  return generate(c, chatRequest(body, tenant, resolveSessionId(c, body.session_id)));
});

/** Session introspection and removal (tenant-scoped like everything else). */
app.get('/v1/sessions/:id', auth, async (c) => {
  const id = sessionIdParam(c.req.param('id')!);
  const r = await sessionStub(c.env, c.get('tenant'), id).info(modelNames(c.env)[0] ?? null);
  if (!r.ok) throw failed(r);
  return c.json({ id, object: 'session', ...r.value });
});

app.delete('/v1/sessions/:id', auth, async (c) => {
  const id = sessionIdParam(c.req.param('id')!);
  const r = await sessionStub(c.env, c.get('tenant'), id).drop();
  if (!r.ok) throw failed(r);
  return c.json({ id, object: 'session.deleted', deleted: true });
});

// ------------------------------------------------------------------------------------------- helpers
function allowedModels(env: Env, tenant: Tenant): string[] {
  const all = modelNames(env);
  return tenant.models ? all.filter((m) => tenant.models!.includes(m)) : all;
}

function modelObject(id: string) {
  return { id, object: 'model', created: 0, owned_by: 'ctc-edge' };
}

/** A 404 for a model this deployment does not serve or the tenant may not use. */
function checkModel(c: Context<AppEnv>, model: string): void {
  if (!allowedModels(c.env, c.get('tenant')).includes(model)) throw unknownModel(model);
}

function unknownModel(model: string): ApiError {
  return new ApiError(404, `The model \`${model}\` does not exist or you do not have access to it.`, 'invalid_request_error', 'model', 'model_not_found');
}

function modelFileNotFound(model: string, file: string): ApiError {
  return new ApiError(404, `The model \`${model}\` has no file \`${file}\`.`, 'invalid_request_error', null, 'file_not_found');
}

function sessionIdParam(id: string): string {
  if (!SESSION_ID_RE.test(id)) throw new ApiError(400, 'Invalid session id: 1-128 characters of [A-Za-z0-9._:-].', 'invalid_request_error', 'session_id', 'invalid_session_id');
  return id;
}

/** The DO of a tenant's session. The tenant is part of the name, so no tenant can reach another's session. */
function sessionStub(env: Env, tenant: Tenant, sessionId: string) {
  return env.SESSIONS.get(env.SESSIONS.idFromName(`${tenant.name}:${sessionId}`));
}

/** Session id from `X-Session-Id` or the body's `session_id` (both allowed if equal); null = ephemeral. */
function resolveSessionId(c: Context<AppEnv>, bodyId: string | null | undefined): string | null {
  const header = c.req.header('x-session-id');
  if (header !== undefined && !SESSION_ID_RE.test(header)) {
    throw new ApiError(400, 'Invalid X-Session-Id: 1-128 characters of [A-Za-z0-9._:-].', 'invalid_request_error', 'session_id', 'invalid_session_id');
  }
  if (header !== undefined && bodyId != null && header !== bodyId) {
    throw new ApiError(400, 'X-Session-Id and session_id differ.', 'invalid_request_error', 'session_id', 'invalid_session_id');
  }
  return header ?? bodyId ?? null;
}

/** One choice being generated: its start, its events, and how to stop it. */
interface Job {
  start: DoStart;
  events: AsyncGenerator<DoEvent>;
  cancel: () => void;
}

async function generate(c: Context<AppEnv>, req: ApiRequest): Promise<Response> {
  const tenant = c.get('tenant');
  const { sessionId, choices, logprobs, echo } = req;
  const kind = req.route;
  const chat = kind === 'chat';
  await admit(c, sessionId);
  const meter = tenant.rpm > 0 || tenant.tpm > 0 ? { rpm: tenant.rpm, tpm: tenant.tpm } : null;
  // max_rounds bounds the whole request: each choice gets what the earlier ones left.
  let roundsLeft = tenant.max_rounds;
  const spend = (done: DoDone) => {
    roundsLeft -= done.usage.rounds;
  };

  const fault = faultSpec(c);
  const request = (k: number) => sessionRequest(req, k, { tenant, maxRounds: roundsLeft, meter, fault });
  /** Choice k's generation, or null when the earlier choices used up the request's rounds (it ends at once). */
  const startJob = async (k: number): Promise<Job | null> => {
    if (roundsLeft <= 0) return null;
    // Ephemeral requests get a DO of their own (random name, nothing persisted).
    const stub = sessionStub(c.env, tenant, sessionId ?? `~ephemeral:${crypto.randomUUID()}`);
    let started: Awaited<ReturnType<typeof stub.generate>>;
    try {
      started = await stub.generate(request(k));
    } catch {
      throw interrupted(); // the object was reset before it answered
    }
    if (!started.ok) throw failed(started);
    const { events, cancel } = readEvents(started.events);
    // Echo: the prompt's text comes first, as if generated.
    return { start: started.start, events: echo ? prepend({ type: 'tokens', text: started.start.echoText ?? '' }, events) : events, cancel };
  };
  const first = (await startJob(0))!; // before answering: an error of the first choice has its own status

  const ids: Ids = {
    id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${crypto.randomUUID().replace(/-/g, '')}`,
    created: Math.floor(Date.now() / 1000),
    model: req.model,
  };
  if (sessionId) c.header('x-session-id', sessionId);
  // A chat reply starts after "Assistant:"; drop the one space the model puts there (see chat-template.ts).
  const shaper = () => {
    let atStart = req.freshReply;
    return (text: string) => {
      const out = trimReplyStart(text, atStart);
      if (out) atStart = false;
      return out;
    };
  };
  /** A choice's logprobs in the route's format; `offset`: where its tokens start in the choice's text. */
  const formatLogprobs = (lps: DoLogprob[], offset: number) => (logprobs === null ? null : chat ? chatLogprobs(lps) : completionLogprobs(lps, offset));
  const render = (outs: ChoiceOut[], done: DoDone) => (kind === 'chat' ? chatResponse(ids, outs, done) : completionResponse(ids, outs, done));

  if (!req.stream) {
    if (choices === 1) {
      const lps: DoLogprob[] = [];
      const events = tap(first.events, (ev) => {
        if (ev.type === 'tokens' && ev.logprobs) lps.push(...ev.logprobs);
      });
      const renderOne = (text: string, done: DoDone) =>
        JSON.stringify(render([{ index: 0, text, finishReason: done.finishReason, logprobs: formatLogprobs(lps, 0) }], done));
      return jsonAsGenerated(c, renderOne, events, shaper(), first.cancel);
    }
    // Several choices: generated one after another, answered together.
    return jsonWhenDone(c, async (ctl) => {
      const outs: ChoiceOut[] = [];
      const dones: DoDone[] = [];
      for (let k = 0; k < choices; k++) {
        const job = k === 0 ? first : await startJob(k);
        if (!job) {
          dones.push(skippedChoice());
          outs.push({ index: k, text: '', finishReason: 'rounds', logprobs: formatLogprobs([], 0) });
          continue;
        }
        ctl.running(job);
        const shape = shaper();
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
            else if (ev.type === 'error') throw ApiError.fromBody(ev.status, ev.body, ev.headers);
          }
        } catch (err) {
          job.cancel();
          throw err instanceof ApiError ? err : interrupted();
        }
        if (!done) throw interrupted();
        spend(done);
        dones.push(done);
        outs.push({ index: k, text, finishReason: done.finishReason, logprobs: formatLogprobs(lps, 0) });
      }
      return JSON.stringify(render(outs, mergeDone(dones)));
    });
  }

  const includeUsage = req.includeUsage;
  const usageField = includeUsage ? null : undefined; // OpenAI sends usage: null on every chunk when asked
  return streamSSE(c, async (sse) => {
    let current = first;
    sse.onAbort(() => current.cancel()); // cancels the DO's generation → the engine stops within one round
    const send = (obj: unknown) => sse.writeSSE({ data: JSON.stringify(obj) });
    const finishChunk = (k: number, finish: 'stop' | 'length') =>
      kind === 'chat' ? chatChunk(ids, {}, finish, usageField, k) : completionChunk(ids, '', finish, usageField, k);
    const dones: DoDone[] = [];
    for (let k = 0; k < choices; k++) {
      if (k > 0) {
        let next: Job | null;
        try {
          next = await startJob(k);
        } catch (err) {
          await send((err instanceof ApiError ? err : interrupted()).toJSON());
          break;
        }
        if (!next) {
          dones.push(skippedChoice());
          await send(finishChunk(k, 'length'));
          continue;
        }
        current = next;
      }
      if (sse.aborted) return current.cancel();
      const shape = shaper();
      if (kind === 'chat') await send(chatChunk(ids, { role: 'assistant', content: '' }, null, usageField, k));
      let ended = false;
      let failed = false;
      let offset = 0;
      try {
        for await (const ev of current.events) {
          if (sse.aborted) return;
          if (ev.type === 'tokens') {
            const text = shape(ev.text);
            const lp = ev.logprobs?.length ? formatLogprobs(ev.logprobs, offset) : null;
            offset += text.length;
            if (!text && !lp) continue;
            await send(kind === 'chat' ? chatChunk(ids, { content: text }, null, usageField, k, lp) : completionChunk(ids, text, null, usageField, k, lp));
          } else if (ev.type === 'done') {
            ended = true;
            spend(ev);
            dones.push(ev);
            await send(finishChunk(k, toFinishReason(ev.finishReason)));
          } else if (ev.type === 'error') {
            ended = true;
            failed = true;
            await send(ev.body); // OpenAI streams errors as a data line carrying {"error": {...}}
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
    if (includeUsage && dones.length === choices) {
      const done = mergeDone(dones);
      await send(usageChunk(kind, ids, toUsage(done.usage), toExtension(done)));
    }
    await sse.writeSSE({ data: '[DONE]' });
  });
}

/** A choice that never ran: the earlier choices used up the request's rounds. */
function skippedChoice(): DoDone {
  return { type: 'done', finishReason: 'rounds', usage: newUsage(0), sessionTokens: 0 };
}

/**
 * A response of several choices, written when the last one is done: JSON cannot be cut into choices that
 * are still to come, so the body starts with one space per round (JSON allows leading whitespace) while they
 * generate. Those writes are how a client that left is noticed where the runtime does not deliver
 * request.signal: the write fails, the running choice is cancelled (its engine stops at the next round
 * boundary), and no further choice starts. Until the first space, errors have their own status; after it,
 * a failure cuts the body short, as with one choice (jsonAsGenerated).
 */
async function jsonWhenDone(c: Context<AppEnv>, run: (ctl: { running(job: Job): void; beat(): Promise<void> }) => Promise<string>): Promise<Response> {
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
  });
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
  return c.newResponse(readable, 200, { 'content-type': 'application/json', 'content-encoding': 'identity', 'cache-control': 'no-transform' });
}

/** `first`, then the events of `rest`. */
async function* prepend(first: DoEvent, rest: AsyncGenerator<DoEvent>): AsyncGenerator<DoEvent> {
  yield first;
  yield* rest;
}

/** The events of `source`, each shown to `see` first. */
async function* tap(source: AsyncGenerator<DoEvent>, see: (ev: DoEvent) => void): AsyncGenerator<DoEvent> {
  for await (const ev of source) {
    see(ev);
    yield ev;
  }
}

/**
 * A non-streaming response, written while it is generated: the JSON up to the text, then the text piece by
 * piece (JSON-escaped), then the rest once the last event is in. The bytes parse to exactly the object a
 * buffered response would carry. Writing as we go is how a disconnect is noticed: the write to a gone client
 * fails and cancels the session's stream, so the engine stops at the next round boundary (the client's
 * request.signal does the same where the runtime delivers it). Until the first text arrives nothing is
 * committed, so every error up to then has its own status; a failure after that (the session object reset,
 * its save failed) ends the body early, which clients see as a broken connection, and retrying it is safe
 * (an interrupted request leaves the session as it was).
 */
async function jsonAsGenerated(
  c: Context<AppEnv>,
  render: (text: string, done: DoDone) => string,
  events: AsyncGenerator<DoEvent>,
  shape: (text: string) => string,
  cancel: () => void,
): Promise<Response> {
  const signal = c.req.raw.signal;
  signal.addEventListener('abort', cancel);
  const MARK = '\u0000text\u0000';
  const split = (done: DoDone) => {
    const json = render(MARK, done);
    const at = json.indexOf(JSON.stringify(MARK).slice(1, -1));
    return [json.slice(0, at), json.slice(at + JSON.stringify(MARK).length - 2)];
  };
  const escape = (t: string) => JSON.stringify(t).slice(1, -1);
  let first = '';
  try {
    // 1. Until the first text: nothing sent, errors are ordinary error responses.
    for (;;) {
      const r = await events.next().catch(() => {
        throw interrupted();
      });
      if (r.done) throw interrupted();
      const ev = r.value;
      if (ev.type === 'error') throw ApiError.fromBody(ev.status, ev.body, ev.headers);
      if (ev.type === 'done') return c.newResponse(render('', ev), 200, { 'content-type': 'application/json' });
      if (ev.type === 'tokens' && (first = shape(ev.text))) break;
    }
  } catch (err) {
    signal.removeEventListener('abort', cancel);
    throw err;
  }
  // 2. Committed to 200: the prefix and the text as it comes, then the rest.
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const enc = new TextEncoder();
  const prefix = split({ type: 'done', finishReason: 'stop', usage: newUsage(0), sessionTokens: 0 })[0];
  const pump = async () => {
    try {
      await writer.write(enc.encode(prefix + escape(first)));
      for await (const ev of events) {
        if (ev.type === 'tokens') {
          const t = shape(ev.text);
          if (t) await writer.write(enc.encode(escape(t)));
        } else if (ev.type === 'done') {
          const [pre, rest] = split(ev);
          if (pre !== prefix) throw new Error('response prefix changed');
          await writer.write(enc.encode(rest));
          await writer.close();
          return;
        } else if (ev.type === 'error') {
          throw ApiError.fromBody(ev.status, ev.body);
        }
      }
      throw interrupted();
    } catch (err) {
      if (!signal.aborted) console.error('non-streaming response cut short', (err as Error)?.message ?? err);
      cancel(); // the client is gone or the session failed: stop the engine
      await writer.abort(new Error('response cut short')).catch(() => {});
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  };
  c.executionCtx.waitUntil(pump());
  // Not compressed on the way (Cloudflare's front, like the local one, would otherwise buffer the body).
  return c.newResponse(readable, 200, { 'content-type': 'application/json', 'content-encoding': 'identity', 'cache-control': 'no-transform' });
}

/** The session's stream broke before its last event: nothing of this request was kept (requests are atomic). */
function interrupted(): ApiError {
  return new ApiError(503, 'The session was interrupted before the request finished (for example, its object was evicted). ' +
    'Nothing of this request was kept; retry it.', 'service_unavailable', null, 'session_interrupted', { 'retry-after': '1' });
}

/** A session method's failure as the error the client gets (with its Retry-After, if any). */
function failed(r: DoFailure): ApiError {
  return ApiError.fromBody(r.error.status, r.error.body, r.error.headers ?? {});
}

/** `X-Fault` (JSON FaultSpec) where the deployment allows fault injection (FAULT_INJECTION=on; tests). */
function faultSpec(c: Context<AppEnv>): FaultSpec | undefined {
  const raw = c.req.header('x-fault');
  if (c.env.FAULT_INJECTION !== 'on' || !raw) return undefined;
  try {
    return JSON.parse(raw) as FaultSpec;
  } catch {
    throw new ApiError(400, 'X-Fault must be JSON.', 'invalid_request_error', null, 'invalid_fault');
  }
}

/**
 * The session's events as they come (batches over RPC). `cancel` (the client is gone) stops the engine at
 * the next round boundary; the source is disposed of once read or cancelled.
 */
function readEvents(source: DoEventSource & Partial<Disposable>): { events: AsyncGenerator<DoEvent>; cancel: () => void } {
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
