/**
 * HTTP layer (Hono): the routes, with auth → tenant limits → validation (zod) → the request
 * (openai/request.ts) → its choices in session Durable Objects (generation.ts) → the route's adapter
 * (openai/adapters.ts) and a writer (sse-writer.ts, json-writer.ts).
 * Everything model-specific (tokenising, context length, drafter names) happens in the DO, next to the engine.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { zValidator } from '@hono/zod-validator';
import type { z } from 'zod';
import type { Env } from './env';
import { startGeneration, respond } from './generation';
import { ApiError } from './openai/errors';
import { chatRequest, completionRequest, type ApiRequest } from './openai/request';
import { ChatCompletionSchema, CompletionSchema, SESSION_ID_RE, type ChatCompletionBody, type CompletionBody } from './openai/schemas';
import type { FaultSpec } from './protocol';
import { failed } from './session-client';
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

/** A generation request: admitted, its first choice started (so that its errors have their own status), then answered. */
async function generate(c: Context<AppEnv>, req: ApiRequest): Promise<Response> {
  const tenant = c.get('tenant');
  await admit(c, req.sessionId);
  const g = await startGeneration(req, { tenant, fault: faultSpec(c), stub: (id) => sessionStub(c.env, tenant, id) });
  if (req.sessionId) c.header('x-session-id', req.sessionId);
  return respond(c, g);
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
