/**
 * Property-based fuzzing of the whole HTTP surface (fast-check): hostile requests of every kind (methods,
 * routes, path encodings and sizes, headers, body encodings and sizes, JSON of the wrong shape, every
 * parameter with values of the wrong type or range, prompts, stop lists, chat roles and content parts,
 * session ids, the extensions), mixed with valid and nearly valid ones so the generation path runs too.
 *
 * Every response must be an answer: never a dropped connection or a hang, never a 5xx, every error in
 * OpenAI's shape, every 200 complete (JSON that parses, or an SSE stream of JSON events ending in [DONE]),
 * every response with `X-Content-Type-Options: nosniff`. A 200 generation has one choice per prompt x n and
 * stays within its tenant's budget (generated tokens and rounds per request). Some valid requests of several
 * choices are left by their client mid-generation. Afterwards a normal greedy request still works and gives
 * the text it gave before the fuzzing; nothing is still generating for a client that left (the tenants'
 * objects stop being charged); the fuzz tenant stores no more sessions than its cap.
 *
 * A failure is shrunk by fast-check and printed (method, path, headers, body; long values abbreviated, so
 * replay it for the exact bytes). If the worker stops answering, it is restarted, so each shrink step runs
 * against a healthy one.
 *
 * Environment:
 *   FUZZ_SEED=<n>    the seed (default: fixed when CI is set, else random; printed either way)
 *   FUZZ_PATH=<p>    with FUZZ_SEED, replay one case (fast-check's "path" of a failure, e.g. 482 or 22:1:1) and shrink it
 *   FUZZ_RUNS=<n>    requests per run (default 1000)
 *   FUZZ_LOG=<file>  append one line per request (time, status, request; failures also in full, as JSON)
 *   FUZZ_KEEP_GOING=1  exploration: record every failing run (with its FUZZ_PATH) instead of stopping at the first
 *   FUZZ_INSPECT=<port>  attach V8's inspector on this port; when the worker stops answering, pause its isolate
 *                    and print where its JavaScript is (a hang in JS shows its stack)
 */
import { appendFileSync } from 'node:fs';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isolateInspector } from '../../scripts/node/isolate-inspector';
import { readManifest, startWorker, tenantTotals, TENANTS, type Worker } from './harness';

const CI_SEED = 20260501;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : process.env.CI ? CI_SEED : Math.floor(Math.random() * 2 ** 31);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const REQUEST_TIMEOUT_MS = 60_000;

// Keys. `sk-fuzz` (max_tokens 8, max_rounds 4) keeps valid requests cheap; `sk-bob` requests get a small max_tokens.
const FUZZ = 'sk-fuzz';
const BOB = 'sk-bob';
const LEAVER = 'sk-leaver';
const VOCAB = 4096; // the default model's vocabulary (manifest config.vocab_size)
const DRAFTERS = ['plain', 'ngram', 'ctc', 'ctc-ngram', 'medusa', 'medusa-ngram'];
const SESSIONS = ['fz-1', 'fz-2', 'fz.3:x', 'S'.repeat(128)]; // valid ids, reused so sessions build up

let w: Worker;
let before: string;

const GREEDY = { model: 'default', prompt: 'def add(a, b):\n', max_tokens: 8, temperature: 0 } as const;
const greedy = async () => (await w.client(BOB).completions.create(GREEDY)).choices[0].text;

// Only the default model: the harness's deliberately broken models answer 503 by design.
const INSPECT = process.env.FUZZ_INSPECT ? Number(process.env.FUZZ_INSPECT) : undefined;
const start = () => startWorker(inject('workerBundleDir'), { vars: { MODEL_NAMES: 'default' }, inspectorPort: INSPECT });

beforeAll(async () => {
  w = await start();
  before = await greedy();
});
afterAll(async () => {
  await w?.dispose();
});

// =========================================================================================== the request
interface FuzzRequest {
  method: string;
  /** Appended to the worker's origin as it is (so `//x` stays a path, not a host). */
  path: string;
  /** In order; a name may repeat (fetch joins the values with ", "). */
  headers: [string, string][];
  body?: string | Uint8Array;
  /** Send the body as a stream (chunked transfer encoding, no Content-Length), in pieces of this many bytes. */
  chunked?: number;
  /** The client leaves (aborts) this long after sending. */
  leaveAfterMs?: number;
}

/** Long strings abbreviated in reports (replay the seed and path for the exact bytes). */
const short = (s: string, max = 400) => (s.length <= max ? s : `${s.slice(0, max)}…(${s.length} chars)`);
function show(r: FuzzRequest): string {
  const body =
    r.body === undefined ? undefined : typeof r.body === 'string' ? JSON.stringify(short(r.body)) : `bytes[${r.body.length}](${short(Buffer.from(r.body).toString('hex'), 400)})`;
  const headers = r.headers.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(short(v, 200))}`).join(', ');
  return `{ method: ${r.method}, path: ${JSON.stringify(short(r.path, 300))}, headers: { ${headers} }${body === undefined ? '' : `, body: ${body}`}${r.chunked ? `, chunked: ${r.chunked}` : ''}${r.leaveAfterMs !== undefined ? `, leaveAfterMs: ${r.leaveAfterMs}` : ''} }`;
}
const printable = (r: FuzzRequest): FuzzRequest => Object.defineProperty(r, fc.toStringMethod, { value: () => show(r), enumerable: false });

// =========================================================================================== building blocks
const w_ = <T,>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
/** The value one time in ten, else null. (fc.option's `freq` is the other way round: null one time in freq.) */
const rarely = <T,>(a: fc.Arbitrary<T>) => fc.oneof(w_(9, fc.constant(null)), w_(1, a));
const loneSurrogates = fc.constantFrom('\ud800', '\udfff', 'a\ud83d', '\ude00b', '\udbff\udbff');
/** Any UTF-16 code unit, lone surrogates included. */
const codeUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const text = fc.oneof(
  w_(4, fc.string({ maxLength: 40 })),
  w_(3, fc.string({ unit: 'grapheme', maxLength: 40 })),
  w_(2, codeUnits),
  w_(1, loneSurrogates),
  w_(1, fc.constantFrom('', ' ', '\u0000', '\n\nUser:', '\nSystem:', '### assistant', '<|endoftext|>', '\u202e', '🙂🙂', 'é', '\r\n', '\\', '"', '%00', '{{ m.role }}')),
  w_(1, fc.tuple(fc.constantFrom('x', 'é', '🙂', 'def f():\n', ' '), fc.integer({ min: 100, max: 5000 })).map(([s, n]) => s.repeat(n))),
);
const code = fc.constantFrom('def add(a, b):\n', 'x = 1', 'import os\n', 'class A:\n    def __init__(self):\n', '', 'print(', 'for i in range(10):\n    ', '# comment\n');

/** A JSON number token written as is (JSON.stringify cannot: 1e999, -0, 8.0, digits past 2^53). */
const RAW = '\u0000raw:';
const raw = (token: string) => RAW + token;
const rawNumbers = fc.constantFrom('1e999', '-1e999', '-0', '0.0', '1.0', '8.0', '8e0', '0.8e1', '1E1', '9007199254740993', '123456789012345678901234567890', '1e-400', '4.0000000000000001', '-0.0').map(raw);
const RAW_IN_JSON = /"\\u0000raw:((?:[^"\\]|\\.)*)"/g;
const serialize = (v: unknown) => (JSON.stringify(v) ?? 'undefined').replace(RAW_IN_JSON, (m) => (JSON.parse(m) as string).slice(RAW.length));

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 32, 2 ** 32 - 1, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE, 0.5, 1.5, -0.1, 1e308),
  fc.double(), // NaN and ±Infinity serialize as null
  rawNumbers,
);
const deep = fc.tuple(fc.constantFrom('[', '{"a":'), fc.integer({ min: 10, max: 20_000 })).map(([open, n]) => raw(open === '[' ? '['.repeat(n) + ']'.repeat(n) : open.repeat(n) + '1' + '}'.repeat(n)));
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  w_(3, hostileNumber),
  w_(3, text),
  w_(2, fc.constantFrom(null, true, false, 'NaN', 'Infinity', '8', 'true', 'null', '', [], {}, [null], [[]], { __proto__: null }, '__proto__', 'constructor', 'toString')),
  w_(2, fc.jsonValue({ maxDepth: 3 })),
  w_(1, fc.anything({ maxDepth: 2, withNullPrototype: true, withObjectString: true })),
  w_(1, deep),
);

// =========================================================================================== parameters
const validSession = fc.constantFrom(...SESSIONS);
const hostileSession = fc.oneof(
  fc.constantFrom('', ' ', 'a b', 'S'.repeat(129), 'é', '🙂', '..', '.', 'a/b', '%2F', '%ff', '%00', 'a%20b', '<script>', '~ephemeral:1', 'fz-1 ', ' fz-1', 'fz-1,fz-2', 'fz-1\t', 'null', 'undefined', '__proto__'),
  text,
);
const stopList = fc.oneof(
  fc.string({ minLength: 1, maxLength: 64 }),
  fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 16 }), { minLength: 1, maxLength: 4 }),
  fc.constantFrom('\n', ['\n', 'def'], ['🙂'], ['x'.repeat(64)], ['\n\n', '\n', ' ', ':']),
);
const hostileStop = fc.oneof(
  fc.constantFrom([], [''], '', ['a', 'b', 'c', 'd', 'e'], 'x'.repeat(65), ['x'.repeat(65)], [null], 5, [5], {}, [['a']], '\u0000', ['\ud800'], ['\n', '\n', '\n', '\n']),
  fc.array(text, { maxLength: 50 }),
  text,
);
const tokenIds = fc.array(fc.integer({ min: 0, max: VOCAB - 1 }), { minLength: 1, maxLength: 64 });
const validPrompt = fc.oneof(
  w_(5, code), w_(2, fc.string({ unit: 'grapheme', maxLength: 60 })), w_(1, code.map((c) => [c])), w_(2, tokenIds), w_(1, tokenIds.map((t) => [t])),
  w_(1, fc.array(code, { minLength: 2, maxLength: 5 })), w_(1, fc.array(tokenIds, { minLength: 2, maxLength: 5 })), // several prompts: a choice each
);
const hostilePrompt = fc.oneof(
  fc.constantFrom('', [], [[]], [''], ['a', 'b'], [1, 'a'], [-1], [1.5], [VOCAB], [VOCAB - 1], [2 ** 53], [0], [[1], [2]], [[1, 2], 'a'], ['a', [1]], [null], [true]),
  fc.constantFrom(511, 512, 513, 1000, 2000).chain((n) => fc.constantFrom(Array(n).fill(5), [Array(n).fill(5)], 'x = 1\n'.repeat(n >> 1))),
  fc.integer({ min: 50_000, max: 120_000 }).map((n) => 'x'.repeat(n)),
  fc.array(fc.oneof(hostileNumber, text), { maxLength: 20 }),
  fc.array(fc.array(hostileNumber, { maxLength: 5 }), { maxLength: 3 }),
  text,
  hostileValue,
);

/** Valid values of the parameters both routes share (cheap under sk-fuzz). */
const validCommon: Record<string, fc.Arbitrary<unknown>> = {
  max_tokens: fc.integer({ min: 1, max: 8 }),
  temperature: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2, noNaN: true }), fc.constantFrom(raw('-0'), raw('2.0'))),
  top_p: fc.oneof(fc.constant(1), fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true })),
  top_k: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.constant(1_000_000)),
  seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  stop: fc.oneof(stopList, fc.constant(null)),
  stream: fc.boolean(),
  stream_options: fc.oneof(fc.record({ include_usage: fc.boolean() }, { requiredKeys: [] }), fc.constant(null), fc.constant({ include_obfuscation: false })),
  n: fc.oneof(w_(3, fc.constantFrom(1, null)), w_(1, fc.integer({ min: 2, max: 16 }))), // n x max_tokens past the budget: a 400
  presence_penalty: fc.constantFrom(0, null),
  frequency_penalty: fc.constantFrom(0, null),
  logit_bias: fc.constantFrom({}, null),
  user: fc.string({ maxLength: 256 }),
  metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  service_tier: fc.constantFrom('auto', 'default'),
  store: fc.constantFrom(false, null),
  drafter: fc.constantFrom(...DRAFTERS),
  tree_budget: fc.integer({ min: 1, max: 64 }),
  session_id: validSession,
  continue: fc.boolean(),
};
const validCompletionOnly: Record<string, fc.Arbitrary<unknown>> = {
  echo: fc.constantFrom(false, null),
  suffix: fc.constantFrom('', null),
  logprobs: fc.constantFrom(null, null, 0, 5, 20),
  best_of: fc.constantFrom(1, null),
};
const validChatOnly: Record<string, fc.Arbitrary<unknown>> = {
  max_completion_tokens: fc.integer({ min: 1, max: 8 }),
  logprobs: fc.constantFrom(false, null),
  tools: fc.constant([]),
  tool_choice: fc.constant('none'),
  parallel_tool_calls: fc.boolean(),
  response_format: fc.constant({ type: 'text' }),
  modalities: fc.constant(['text']),
};
/** Edge and wrong values per parameter (on top of the generic hostile values). */
const hostileByParam: Record<string, fc.Arbitrary<unknown>> = {
  model: fc.constantFrom('', 'x'.repeat(129), 'x'.repeat(128), 'corrupt', 'missing', 'DEFAULT', 'default ', ' default', 'default\u0000', 5, null, ['default'], {}, 'gpt-4o', '../default', 'default/../x', '__proto__', 'constructor', 'toString'),
  prompt: hostilePrompt,
  max_tokens: fc.constantFrom(0, -1, 9, 16, 512, 513, 1e6, 1.5, raw('8.0'), raw('1e999'), raw('-0'), '8', true, [], {}, 2 ** 53),
  max_completion_tokens: fc.constantFrom(0, -1, 9, 513, 1.5, '8', raw('8.0')),
  temperature: fc.constantFrom(-0.1, 2.0001, 3, 'hot', raw('1e999'), true, 1e308, raw('-1e-400')),
  top_p: fc.constantFrom(0, raw('-0'), 1.0000001, 2, '1', -1, raw('1e-400')),
  top_k: fc.constantFrom(-1, 1_000_001, 0.5, 1e9, '5', raw('1e999')),
  seed: fc.constantFrom(-1, 2 ** 32, 0.5, 2 ** 53, '1', raw('9007199254740993')),
  stop: hostileStop,
  repetition_penalty: fc.constantFrom(1e-300, 0, -1, 0.009, 0.01, 10, 10.0001, raw('1e-400'), '1'),
  stream: fc.constantFrom('true', 1, 0, 'false', [true]),
  stream_options: fc.constantFrom({}, { include_usage: 'yes' }, { colour: 'red' }, [], 'x', { include_obfuscation: true }, { include_usage: null }),
  n: fc.constantFrom(0, 2, 16, 17, 100, 1.5, '1', -1),
  presence_penalty: fc.constantFrom(0.5, -2, '0'),
  frequency_penalty: fc.constantFrom(1, '0'),
  logit_bias: fc.constantFrom({ '1': 5 }, [], { a: 'b' }, { '1': 0 }),
  user: fc.constantFrom('x'.repeat(257), 5, {}),
  metadata: fc.constantFrom({ a: 5 }, [], 'x', { ['k'.repeat(1000)]: 'v' }, { a: null }),
  service_tier: fc.constantFrom('x'.repeat(33), 5),
  store: fc.constantFrom(true, 'false'),
  drafter: fc.constantFrom('', 'x'.repeat(65), 'psychic', 'PLAIN', 'plain ', 5, 'ngram\u0000', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'medusa'),
  tree_budget: fc.constantFrom(0, 65, -1, 1.5, 1e9, '8', raw('8.0')),
  session_id: fc.oneof(hostileSession, fc.constantFrom(5, true, [], {})),
  continue: fc.constantFrom('true', 1, 0, [], 'yes'),
  echo: fc.constantFrom(true, 'false'),
  suffix: fc.constantFrom('x', 5),
  logprobs: fc.constantFrom(0, 5, true, -1),
  best_of: fc.constantFrom(2, 0, '1'),
  tools: fc.constantFrom([{ type: 'function' }], {}, 'auto'),
  tool_choice: fc.constantFrom('auto', 'required', { type: 'function' }),
  response_format: fc.constantFrom({ type: 'json_object' }, { type: 'json_schema', json_schema: {} }, 'text', {}),
  modalities: fc.constantFrom(['audio'], 'text', [5]),
};
const UNKNOWN_KEYS = ['temprature', 'prompts', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'functions', 'function_call', 'reasoning_effort', 'prediction', 'audio', 'web_search_options', 'top_logprobs', 'messages', 'prompt', 'Model', 'MAX_TOKENS', '', ' ', 'ctc_edge', 'sessionId'];

// Chat messages and content parts.
const ROLES = ['system', 'developer', 'user', 'assistant'];
const validPart = fc.record({ type: fc.constant('text'), text: fc.oneof(code, fc.string({ unit: 'grapheme', maxLength: 30 })) });
const validMessage = fc.record(
  {
    role: fc.constantFrom(...ROLES),
    content: fc.oneof(w_(4, fc.oneof(code, fc.string({ unit: 'grapheme', maxLength: 60 }))), w_(2, fc.array(validPart, { maxLength: 4 })), w_(1, fc.constant(null))),
    name: fc.string({ maxLength: 64 }),
    refusal: fc.constant(null),
    annotations: fc.constant([]),
    tool_calls: fc.constant([]),
  },
  { requiredKeys: ['role', 'content'] },
);
const hostilePart = fc.oneof(
  validPart,
  fc.constantFrom(
    { type: 'image_url', image_url: { url: 'http://x/y.png' } },
    { type: 'input_audio', input_audio: { data: '', format: 'wav' } },
    { type: 'file', file: {} },
    { type: 'refusal', refusal: 'no' },
    { type: 'text' },
    { type: 'text', text: null },
    { type: 'text', text: 5 },
    { type: 'TEXT', text: 'a' },
    { text: 'a' },
    { type: 'text', text: 'a', extra: 1 },
    { type: 'text', text: 'a', cache_control: { type: 'ephemeral' } },
    'a',
    null,
    [],
    5,
  ),
  fc.record({ type: fc.oneof(fc.constant('text'), text), text: hostileValue }, { requiredKeys: [] }),
);
const hostileMessage = fc.oneof(
  fc.record(
    {
      role: fc.oneof(fc.constantFrom(...ROLES), fc.constantFrom('tool', 'function', 'wizard', '', 'USER', 'System', null, 5, ['user'])),
      content: fc.oneof(text, fc.constant(null), fc.array(hostilePart, { maxLength: 5 }), fc.constant(Array(65).fill({ type: 'text', text: 'a' })), hostileValue),
      name: fc.oneof(fc.string({ maxLength: 64 }), fc.constantFrom('x'.repeat(65), 5)),
      tool_calls: fc.constantFrom([], [{ id: 'x', type: 'function', function: { name: 'f', arguments: '{}' } }], null),
      tool_call_id: fc.constantFrom('x', null),
      function_call: fc.constantFrom({ name: 'f', arguments: '{}' }, null),
      audio: fc.constantFrom({ id: 'a' }, null),
      refusal: fc.constantFrom(null, 'no'),
    },
    { requiredKeys: [] },
  ),
  validMessage,
  hostileValue,
);
const validMessages = fc.array(validMessage, { minLength: 1, maxLength: 4 });
const hostileMessages = fc.oneof(
  fc.array(hostileMessage, { minLength: 0, maxLength: 6 }),
  fc.constantFrom([], {}, 'hi', null, [null], [{}], [{ role: 'user' }], [{ content: 'hi' }], Array(300).fill({ role: 'user', content: 'hi' })),
  fc.integer({ min: 50_000, max: 120_000 }).map((n) => [{ role: 'user', content: 'x'.repeat(n) }]),
  hostileValue,
);
hostileByParam.messages = hostileMessages;

// =========================================================================================== bodies
type Route = 'completions' | 'chat';

/** A valid body: the required parameters and a random subset of valid optional ones. */
function validBody(route: Route): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {
    model: fc.constant('default'),
    ...(route === 'chat' ? { messages: validMessages } : { prompt: validPrompt }),
    ...validCommon,
    ...(route === 'chat' ? validChatOnly : validCompletionOnly),
  };
  const required = ['model', route === 'chat' ? 'messages' : 'prompt'];
  return (fc.record(fields, { requiredKeys: required }) as fc.Arbitrary<Record<string, unknown>>).chain((b) =>
    // `continue` is only meaningful with a session; without one it is a (valid-shape) 400: keep it sometimes.
    fc.boolean().map((keep) => (b.continue && !b.session_id && !keep ? { ...b, continue: false } : b)),
  );
}

/** A valid body with some parameters changed to hostile values, unknown ones added, or required ones removed. */
function mutatedBody(route: Route): fc.Arbitrary<Record<string, unknown>> {
  const names = [...new Set([...Object.keys(validCommon), ...Object.keys(validCompletionOnly), ...Object.keys(validChatOnly), ...Object.keys(hostileByParam), 'model', 'prompt', 'messages'])];
  const mutation = fc.oneof(
    w_(6, fc.constantFrom(...names).chain((k) => fc.tuple(fc.constant(k), hostileByParam[k] ? fc.oneof(w_(3, hostileByParam[k]), w_(1, hostileValue)) : hostileValue))),
    w_(1, fc.tuple(fc.oneof(fc.constantFrom(...UNKNOWN_KEYS), fc.string({ maxLength: 12 })), hostileValue)),
    w_(1, fc.tuple(fc.constantFrom('model', 'prompt', 'messages'), fc.constant(undefined))),
  );
  return fc.tuple(validBody(route), fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([b, ms]) => {
    const out: Record<string, unknown> = { ...b };
    for (const [k, v] of ms) {
      if (v === undefined) delete out[k];
      else Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true }); // `__proto__` as an own key
    }
    return out;
  });
}

/** Body text or bytes, from an object or hostile outright. */
const bodyOf = (route: Route | null) => {
  const objects = route ? fc.oneof(w_(3, validBody(route)), w_(5, mutatedBody(route))) : fc.dictionary(fc.string({ maxLength: 10 }), hostileValue, { maxKeys: 4 });
  return fc.oneof(
    w_(14, objects.map(serialize)),
    // Encodings of a valid-looking JSON body.
    w_(
      2,
      fc.tuple(objects.map(serialize), fc.constantFrom('bom', 'utf16le', 'utf16be', 'latin1', 'gzip', 'pretty', 'invalid-utf8', 'nul-suffix', 'trailing-garbage', 'truncated', 'duplicate-keys')).map(
        ([json, enc]): string | Uint8Array => {
          switch (enc) {
            case 'bom':
              return '\ufeff' + json;
            case 'utf16le':
              return new Uint8Array(Buffer.from('\ufeff' + json, 'utf16le'));
            case 'utf16be':
              return new Uint8Array(Buffer.from('\ufeff' + json, 'utf16le').swap16());
            case 'latin1':
              return new Uint8Array(Buffer.from(json.replace(/"default"/, '"défault"'), 'latin1'));
            case 'gzip':
              return new Uint8Array(gzipSync(json));
            case 'pretty':
              try {
                const pretty = JSON.stringify(JSON.parse(json.replace(RAW_IN_JSON, '0')), null, '\t') + '\r\n';
                if (pretty.length < 2 * json.length + 1024) return pretty; // not deep nesting, whose indentation grows quadratically
              } catch {
                // too deep for Node's JSON.stringify
              }
              return json + '\r\n';
            case 'invalid-utf8': {
              const b = Buffer.from(json);
              const at = b.indexOf('"', 1) + 1 || 1;
              return new Uint8Array(Buffer.concat([b.subarray(0, at), Buffer.from([0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0xf4, 0x90]), b.subarray(at)]));
            }
            case 'nul-suffix':
              return json + '\u0000';
            case 'trailing-garbage':
              return json + ' {}';
            case 'truncated':
              return json.slice(0, Math.max(0, json.length - 3));
            default:
              return json.replace(/^\{/, '{"model":"x","model":5,"prompt":[],');
          }
        },
      ),
    ),
    // Not JSON, or JSON that is not an object.
    w_(
      2,
      fc.oneof(
        fc.constantFrom('', ' ', '{', '}', '[', 'null', 'true', '0', '-0', '"x"', '[1,2]', '[]', '{"model": "default", "prompt": ', '{"a":1,}', '{/*c*/}', "{'model':'default'}", 'NaN', 'Infinity', 'model=default&prompt=a', '\u0000', '{"model":"default","prompt":"a"}\u0000'),
        hostileValue.map(serialize),
        fc.string({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 200 }),
      ),
    ),
    // Sizes: near and over the 256 KiB body limit, deep nesting.
    w_(
      1,
      fc.oneof(
        fc.integer({ min: 256 * 1024 - 64, max: 300 * 1024 }).map((n) => serialize({ model: 'default', prompt: 'x'.repeat(Math.max(0, n - 40)) })),
        fc.integer({ min: 10, max: 100_000 }).map((n) => `{"model":"default","prompt":${'['.repeat(n)}${']'.repeat(n)}}`),
        fc.integer({ min: 10, max: 100_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
        fc.integer({ min: 10, max: 50_000 }).map((n) => `{"model":"default","metadata":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`),
        fc.integer({ min: 1, max: 20_000 }).map((n) => serialize({ model: 'default', prompt: 'a', stop: Array(n).fill('x') })),
        fc.integer({ min: 1, max: 5_000 }).map((n) => serialize({ model: 'default', messages: Array(n).fill({ role: 'user', content: [{ type: 'text', text: 'hi' }] }) })),
      ),
    ),
  );
};

// =========================================================================================== paths
/** Lone surrogates as U+FFFD (encodeURIComponent throws on them). */
const wellFormed = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
const encode = (s: string) => encodeURIComponent(wellFormed(s));
const sessionInPath = fc.oneof(validSession, hostileSession.map((s) => s.replace(/[?#]/g, '')), hostileSession.map(encode));
const SHARDS = Object.values(readManifest().files).flatMap((f) => f.shards.map((s) => s.path));
const fileInPath = fc.oneof(
  w_(3, fc.constantFrom('manifest.json', ...SHARDS)),
  w_(2, fc.constantFrom('', '.', '..', '%2e%2e', '.hidden', '..%2fmanifest.json', '%2e%2e%2fcorrupt%2fmanifest.json', 'manifest.json%00', 'MANIFEST.JSON', 'x'.repeat(200), '__r2-faults', 'manifest.json?x')),
  w_(1, text.map(encode)),
);
const modelInPath = fc.oneof(fc.constant('default'), fc.constantFrom('corrupt', 'missing', '', 'DEFAULT', 'gpt-4', 'x'.repeat(300), '%2e%2e', '..', 'default%00', 'default/extra', 'd%65fault', '%ff', '%', 'toString', '__proto__'), text.map(encode));
const junkPath = fc.oneof(
  fc.constantFrom(
    '/', '/v1', '/v1/', '/v2/completions', '/V1/COMPLETIONS', '/v1/completions/', '//v1/completions', '/v1//completions', '/v1/completions/x', '/v1/completions%2F',
    '/v1/%63ompletions', '/v1/chat/completions;x', '/v1/chat', '/v1/chat/', '/v1/models/', '/v1/sessions', '/v1/sessions/', '/v1/sessions/a/b', '/favicon.ico',
    '/.well-known/security.txt', '/v1/m%C3%B3dels', '/%ff', '/%', '/%zz', '/v1/models/%00', '/v1/./completions', '/v1/x/../completions', '/health/', '/HEALTH', '/v1\\completions',
    '/v1/completions\t', '/%2e%2e/%2e%2e/etc/passwd', '/v1/engines/default/completions', '/v1/embeddings', '/v1/responses',
    // what a build could leave public: models, source maps
    '/models/default/manifest.json', '/models/default/', '/models/', '/build/engine-wasm.js.map', '/build/demo.js.map', '/build/ort/ort-wasm-simd-threaded.wasm',
    '/v1/models/default/files', '/v1/models/default/files/', '/v1/models/default/files/a/b',
  ),
  fc.tuple(fc.constantFrom('/', '/v1/models/', '/v1/sessions/', '/v1/completions/'), fc.constantFrom('a', '%41', '🙂', '/'), fc.integer({ min: 100, max: 12_000 })).map(([p, s, n]) => p + s.repeat(n)),
  fc.webPath().map((p) => '/' + p.replace(/^\/+/, '')),
  text.map((t) => '/' + encodeURI(wellFormed(t))),
);
const query = fc.oneof(
  w_(12, fc.constant('')),
  w_(1, fc.constantFrom('?', '?model=x&stream=true', '?%ff', '?a=' + 'q'.repeat(4000), '?session_id=fz-1', '#frag', '?key=sk-fuzz')),
  w_(1, fc.webQueryParameters().map((q) => '?' + q)),
);

// =========================================================================================== headers
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
/**
 * What fetch can put on the wire (HTTP's field-value: visible ASCII, space, tab and bytes 0x80-0xFF; undici refuses
 * other control characters); non-Latin-1 text goes out as its UTF-8 bytes, as most clients send it.
 */
const headerValue = (s: string) => Buffer.from(s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, ''), 'utf8').toString('latin1');
const authorization = fc.oneof(
  w_(30, fc.constant(`Bearer ${FUZZ}`)),
  w_(4, fc.constant(`Bearer ${BOB}`)),
  w_(1, fc.constant('Bearer sk-limited')),
  w_(3, fc.constantFrom(`bearer ${FUZZ}`, `BEARER ${FUZZ}`, `Bearer   ${FUZZ} \t`, `Bearer\t${FUZZ}`, `Bearer ${FUZZ}\u00a0`, `Bearer\u00a0${FUZZ}`, `Bearer ${FUZZ}\u3000`, `Bearer ${FUZZ}é`)),
  w_(4, fc.constantFrom('', 'Bearer', 'Bearer ', 'Bearer  ', 'Basic c2stZnV6eg==', FUZZ, `Token ${FUZZ}`, `Bearer ${FUZZ} ${BOB}`, `Bearer ${FUZZ}, Bearer ${BOB}`, `Bearer ${FUZZ},${BOB}`, 'Bearer sk-nope', 'Bearer sk-local-devx', `Bearer "${FUZZ}"`, `Bearer ${FUZZ.toUpperCase()}`, 'Bearer ' + 'k'.repeat(10_000))),
  w_(2, text.map((t) => `Bearer ${t}`)),
  w_(1, text),
);
const contentType = fc.oneof(
  w_(20, fc.constant('application/json')),
  w_(
    2,
    fc.constantFrom(
      'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/vnd.api+json', 'application/json;charset=utf-16', 'application/json; charset=latin1', ' application/json ',
      'text/plain', 'text/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', ';;;', 'application/', 'application/jsonx', '*/*', 'application/json, text/plain',
      'application/problem+json', 'application/json; boundary="', 'application/ json',
    ),
  ),
  w_(1, text),
);
const EXTRA = ['accept', 'accept-encoding', 'content-encoding', 'origin', 'referer', 'cookie', 'user-agent', 'x-forwarded-for', 'x-fault', 'x-request-id', 'openai-organization', 'openai-project', 'x-stainless-retry-count', 'cf-connecting-ip', 'range', 'if-none-match', 'x-http-method-override'];
const extraHeader = fc.tuple(
  fc.oneof(fc.constantFrom(...EXTRA), fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,24}$/)).filter((n) => !/^(host|content-length|transfer-encoding|connection|expect|upgrade|keep-alive|te|trailer|proxy-.*)$/i.test(n)),
  fc.oneof(
    fc.constantFrom('gzip', 'br', 'identity', 'gzip, deflate, br', '*', 'application/json', 'text/event-stream', '{"delay_ms":1}', '{', 'null', 'bytes=0-10', 'POST', 'DELETE'),
    text,
    fc.integer({ min: 1000, max: 12_000 }).map((n) => 'v'.repeat(n)),
  ),
);

// =========================================================================================== requests

const authKeyIsBob = (h: [string, string][]) => h.some(([k, v]) => k === 'authorization' && v.includes(BOB));

/** sk-bob allows 512 tokens and 1000 rounds: keep its valid requests as cheap as sk-fuzz's. */
function cheapForBob(body: string | Uint8Array | undefined, headers: [string, string][]): string | Uint8Array | undefined {
  if (typeof body !== 'string' || !authKeyIsBob(headers)) return body;
  let obj: unknown;
  try {
    obj = JSON.parse(body);
  } catch {
    return body;
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return body;
  const o = obj as Record<string, unknown>;
  if (o.max_tokens == null || (typeof o.max_tokens === 'number' && o.max_tokens > 8 && o.max_tokens <= 512)) o.max_tokens = 8;
  try {
    return JSON.stringify(o);
  } catch {
    return body; // nested too deep to re-serialise here: send it as generated
  }
}

/** Valid requests: the right route, method, key and content type, a valid body. */
const validRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.constantFrom<Route>('completions', 'chat'),
    fc.constantFrom(`Bearer ${FUZZ}`, `Bearer ${FUZZ}`, `Bearer ${FUZZ}`, `Bearer ${BOB}`),
    fc.option(validSession, { freq: 3 }),
  )
  .chain(([route, auth, session]) =>
    validBody(route).map((b): FuzzRequest => {
      const headers: [string, string][] = [['authorization', auth], ['content-type', 'application/json']];
      if (session !== null && (b.session_id === undefined || b.session_id === session)) headers.push(['x-session-id', session]);
      const body = cheapForBob(serialize(b), headers);
      return { method: 'POST', path: route === 'chat' ? '/v1/chat/completions' : '/v1/completions', headers, body };
    }),
  );

/** Any request: random method, route, headers and body. */
const hostileRequest: fc.Arbitrary<FuzzRequest> = fc
  .oneof(
    w_(30, fc.constant({ path: '/v1/completions', route: 'completions' as Route | null, method: 'POST' })),
    w_(30, fc.constant({ path: '/v1/chat/completions', route: 'chat' as Route | null, method: 'POST' })),
    w_(3, fc.constant({ path: '/health', route: null, method: 'GET' })),
    w_(4, fc.constant({ path: '/v1/models', route: null, method: 'GET' })),
    w_(4, modelInPath.map((m) => ({ path: `/v1/models/${m}`, route: null, method: 'GET' }))),
    w_(3, fc.tuple(modelInPath, fileInPath).map(([m, f]) => ({ path: `/v1/models/${m}/files/${f}`, route: null, method: 'GET' }))),
    w_(8, fc.tuple(sessionInPath, fc.constantFrom('GET', 'DELETE')).map(([s, method]) => ({ path: `/v1/sessions/${s}`, route: null, method }))),
    w_(6, junkPath.map((path) => ({ path, route: null, method: 'POST' }))),
  )
  .chain(({ path, route, method }) =>
    fc.record({
      path: fc.constant(path),
      route: fc.constant(route),
      // Mostly the route's own method; sometimes any.
      method: fc.oneof(w_(5, fc.constant(method)), w_(1, fc.constantFrom(...METHODS))),
      query,
      authorization: fc.option(authorization, { freq: 12 }),
      contentType: fc.option(contentType, { freq: 20 }),
      sessionHeader: fc.option(fc.oneof(w_(3, validSession), w_(2, hostileSession)), { freq: 2, nil: null }),
      duplicate: rarely(fc.constantFrom('authorization', 'x-session-id', 'content-type')),
      extras: fc.array(extraHeader, { maxLength: 3 }),
      body: bodyOf(route),
      chunked: rarely(fc.constantFrom(1, 7, 1024, 65_536)),
    }),
  )
  .map((r): FuzzRequest => {
    const headers: [string, string][] = [];
    if (r.authorization !== null) headers.push(['authorization', headerValue(r.authorization)]);
    if (r.contentType !== null) headers.push(['content-type', headerValue(r.contentType)]);
    if (r.sessionHeader !== null) headers.push(['x-session-id', headerValue(r.sessionHeader)]);
    const first = headers.find(([k]) => k === r.duplicate);
    if (first) headers.push([first[0], first[1]]); // the same header twice (fetch sends "v, v")
    for (const [k, v] of r.extras) headers.push([k, headerValue(v)]);
    const hasBody = r.method !== 'GET' && r.method !== 'HEAD';
    const body = hasBody ? cheapForBob(r.body, headers) : undefined;
    const chunked = r.chunked === 1 && body !== undefined && body.length > 4096 ? 1024 : r.chunked; // 1-byte writes only for small bodies
    return { method: r.method, path: r.path + r.query, headers, body, ...(hasBody && chunked !== null && body !== undefined ? { chunked } : {}) };
  });

/**
 * Sizes the worker can be sent at all: Cloudflare's front refuses URLs over 16 KB (414) and request headers over
 * 128 KB (431) before a worker runs, and local workerd's front answers "header too large" (a plain-text 431)
 * past about 128 KB of request line and headers. Longer paths are cut, larger header values shortened.
 */
const MAX_URL = 16 * 1024;
const MAX_HEADERS = 64 * 1024;
function withinFrontLimits(req: FuzzRequest): FuzzRequest {
  let path = req.path;
  const encodedLength = (p: string) => {
    const u = new URL('http://h' + p);
    return u.pathname.length + u.search.length;
  };
  while (encodedLength(path) > MAX_URL) path = path.slice(0, Math.floor(path.length * 0.75));
  const headers = req.headers.map(([k, v]) => [k, v] as [string, string]);
  const size = () => headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
  while (size() > MAX_HEADERS) {
    const big = headers.reduce((a, b) => (b[1].length > a[1].length ? b : a));
    big[1] = big[1].slice(0, Math.floor(big[1].length / 2));
  }
  return { ...req, path, headers };
}

/**
 * Valid requests whose client leaves mid-generation: several choices (n, prompt arrays), streamed or not,
 * long enough to leave during (the end of text banned), left after 0-400 ms.
 */
const leavingRequest: fc.Arbitrary<FuzzRequest> = fc
  .record({
    route: fc.constantFrom<Route>('completions', 'chat'),
    prompts: fc.array(code, { minLength: 1, maxLength: 4 }),
    n: fc.integer({ min: 1, max: 4 }),
    max_tokens: fc.integer({ min: 16, max: 64 }),
    stream: fc.boolean(),
    drafter: fc.constantFrom(...DRAFTERS),
    leaveAfterMs: fc.integer({ min: 0, max: 400 }),
  })
  .map(({ route, prompts, n, max_tokens, stream, drafter, leaveAfterMs }): FuzzRequest => {
    const body = { model: 'default', max_tokens, n, stream, drafter, temperature: 0, logit_bias: { 1: -100, 2: -100 }, ...(route === 'chat' ? { messages: [{ role: 'user', content: prompts[0] }] } : { prompt: prompts.length > 1 ? prompts : prompts[0] }) };
    return { method: 'POST', path: route === 'chat' ? '/v1/chat/completions' : '/v1/completions', headers: [['authorization', `Bearer ${LEAVER}`], ['content-type', 'application/json']], body: JSON.stringify(body), leaveAfterMs };
  });

/** A quarter valid requests (most of them generate); the rest hostile, many with valid or nearly valid bodies; a few clients leave. */
const arbRequest = fc.oneof(w_(4, validRequest), w_(12, hostileRequest), w_(1, leavingRequest)).map((r) => printable(withinFrontLimits(r)));

// =========================================================================================== checks
const stats = { total: 0, byStatus: new Map<number, number>(), generated: 0, streamed: 0, left: 0, severalChoices: 0 };

/** Per request, by key: generated tokens (all choices) and draft-verify rounds (harness TENANTS; default budget 2,048). */
function budgetOf(req: FuzzRequest): { tokens: number; rounds: number } {
  const auth = req.headers.find(([k]) => k === 'authorization')?.[1] ?? '';
  const t = auth.includes(BOB) ? TENANTS.bob : auth.includes('sk-limited') ? TENANTS.limited : TENANTS.fuzz;
  return { tokens: (t as { max_request_tokens?: number }).max_request_tokens ?? 2048, rounds: t.max_rounds };
}

/** Choices a generation asks for: n per prompt (a prompt array of strings or of token-id arrays holds several). */
function choicesOf(req: FuzzRequest): number | null {
  let b: { n?: number | null; prompt?: unknown };
  try {
    const text = typeof req.body === 'string' ? req.body : new TextDecoder().decode(req.body);
    b = JSON.parse(text.replace(/^\ufeff/, ''));
  } catch {
    return null; // a body the worker decoded otherwise (another encoding): not counted here
  }
  const several = Array.isArray(b.prompt) && (typeof b.prompt[0] === 'string' || Array.isArray(b.prompt[0]));
  return (b.n ?? 1) * (several ? (b.prompt as unknown[]).length : 1);
}

/** A generation's usage and rounds against the key's budget. */
function checkCost(req: FuzzRequest, usage: { completion_tokens: number } | undefined, ext: { rounds: number } | undefined): void {
  const budget = budgetOf(req);
  if (usage && usage.completion_tokens > budget.tokens) fail(req, `${usage.completion_tokens} tokens generated, over the key's ${budget.tokens} per request`);
  if (ext && ext.rounds > budget.rounds) fail(req, `${ext.rounds} rounds, over the key's ${budget.rounds} per request`);
}

function fail(req: FuzzRequest, what: string, detail = ''): never {
  throw new Error(`${what}${detail ? `\n  ${detail}` : ''}\n  request: ${show(req)}`);
}

function checkErrorShape(req: FuzzRequest, status: number, body: string, where: string): void {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    fail(req, `${where}: an error body that is not JSON (status ${status})`, short(body, 500));
  }
  const e = (json as { error?: Record<string, unknown> } | null)?.error;
  const ok =
    json !== null &&
    typeof json === 'object' &&
    !Array.isArray(json) &&
    Object.keys(json).length === 1 &&
    e !== null &&
    typeof e === 'object' &&
    typeof e.message === 'string' &&
    typeof e.type === 'string' &&
    'param' in e &&
    'code' in e &&
    (e.param === null || typeof e.param === 'string') &&
    (e.code === null || typeof e.code === 'string');
  if (!ok) fail(req, `${where}: not OpenAI's error shape (status ${status})`, short(body, 500));
}

function checkStream(req: FuzzRequest, body: string, generation: boolean): void {
  // Events are separated by a blank line; each carries one `data:` line (Hono's writeSSE).
  const events = body.split(/\r?\n\r?\n/).filter((e) => e.trim() !== '');
  const data = events.map((e) => {
    const lines = e.split(/\r?\n/).filter((l) => l.startsWith('data:'));
    if (lines.length !== 1) fail(req, 'an SSE event without exactly one data line', JSON.stringify(short(e, 300)));
    return lines[0].slice(5).trimStart();
  });
  if (data.at(-1) !== '[DONE]') fail(req, 'the stream does not end with data: [DONE]', JSON.stringify(short(body.slice(-500), 500)));
  for (const d of data.slice(0, -1)) {
    let json: unknown;
    try {
      json = JSON.parse(d);
    } catch {
      fail(req, 'an SSE data line before [DONE] that is not JSON', JSON.stringify(short(d, 300)));
    }
    if (json && typeof json === 'object' && 'error' in json) checkErrorShape(req, 200, d, 'an error event in the stream');
  }
  if (!generation) return;
  const parsed = data.slice(0, -1).map((d) => JSON.parse(d) as { error?: unknown; choices?: { index: number; finish_reason: string | null }[]; usage?: { completion_tokens: number } | null; ctc_edge?: { rounds: number } });
  if (parsed.some((e) => e.error)) return; // cut short by an error: no complete set of choices to count
  const finished = parsed.flatMap((e) => (e.choices ?? []).filter((c) => c.finish_reason).map((c) => c.index));
  const want = choicesOf(req);
  if (want !== null && (finished.length !== want || new Set(finished).size !== want)) fail(req, `a stream of ${want} choices finished ${JSON.stringify(finished)}`);
  const last = parsed.at(-1);
  checkCost(req, last?.usage ?? undefined, last?.ctc_edge);
}

/** The request in full, as JSON (a byte body as base64). */
const exact = (r: FuzzRequest) =>
  JSON.stringify({ ...r, body: r.body instanceof Uint8Array ? { base64: Buffer.from(r.body).toString('base64') } : r.body });

/** FUZZ_LOG=<file>: one line per request (status, time, request), to see what came before a failure. */
const LOG = process.env.FUZZ_LOG;
const log = (line: string) => LOG && appendFileSync(LOG, line + '\n');

/**
 * One request, checked. A failure that leaves the worker unresponsive (a hang, a crashed isolate) would make
 * every later request fail too and shrinking meaningless: then the worker is restarted, so each shrink step
 * runs against a healthy worker (sessions start empty again).
 */
async function sendChecked(req: FuzzRequest): Promise<void> {
  const t = Date.now();
  try {
    await send(req);
    log(`ok ${Date.now() - t}ms ${lastStatus} ${show(req)}`);
  } catch (err) {
    log(`FAIL ${Date.now() - t}ms ${lastStatus} ${show(req)}\n  ${(err as Error).message.split('\n')[0]}\n  exact: ${exact(req)}`);
    if (!(await healthy())) {
      console.log(`[fuzz] the worker is unresponsive after: ${(err as Error).message.split('\n')[0]}; restarting it`);
      if (INSPECT) await printIsolateStack(INSPECT);
      await w.dispose().catch(() => {});
      w = await start();
    }
    throw err;
  }
}

/**
 * FUZZ_INSPECT: pause the worker's isolate and print its JavaScript stack. An isolate whose thread is stuck
 * outside JavaScript (in the runtime or V8 itself) cannot pause: then say so (look with `gdb -p <workerd pid>`).
 */
async function printIsolateStack(port: number): Promise<void> {
  type Frame = { functionName: string; url: string; location: { lineNumber: number; columnNumber: number } };
  const within = <T,>(ms: number, p: Promise<T>) => Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), ms))]);
  const insp = await within(10_000, isolateInspector(port));
  if (!insp) return console.log('[fuzz] the inspector did not answer in 10 s: the isolate is stuck outside JavaScript');
  try {
    const paused = new Promise<Frame[]>((res) => insp.on('Debugger.paused', (p) => res((p as { callFrames: Frame[] }).callFrames)));
    void insp.call('Debugger.enable');
    void insp.call('Debugger.pause');
    const frames = await within(10_000, paused);
    if (!frames) console.log('[fuzz] the isolate did not pause within 10 s: it is stuck outside JavaScript');
    else console.log(`[fuzz] the isolate paused in:\n${frames.map((f) => `  at ${f.functionName || '(anonymous)'} ${f.url}:${f.location.lineNumber + 1}:${f.location.columnNumber + 1}`).join('\n')}`);
    void insp.call('Debugger.resume');
  } finally {
    insp.close();
  }
}

/** GET /health on a fresh socket of its own (not fetch's connection pool), within 5 s: its status line or why not. */
function rawHealth(): Promise<string> {
  const { hostname, port } = new URL(w.url);
  return new Promise((resolve) => {
    const sock = connect(Number(port), hostname);
    let got = '';
    const done = (what: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => done(`no answer in 5 s${got ? ` (got ${JSON.stringify(got.slice(0, 80))})` : ''}`), 5_000);
    sock.on('connect', () => sock.write(`GET /health HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`));
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.slice(0, got.indexOf('\r\n')));
    });
    sock.on('error', (e) => done(`socket error ${e.message}`));
  });
}

async function healthy(): Promise<boolean> {
  const raw = await rawHealth();
  if (/^HTTP\/1\.1 200/.test(raw)) return true;
  console.log(`[fuzz] GET /health on a fresh socket: ${raw}`);
  return false;
}

let lastStatus = 0;
async function send(req: FuzzRequest): Promise<void> {
  lastStatus = 0;
  const headers = new Headers();
  for (const [k, v] of req.headers) headers.append(k, v);
  let body: BodyInit | undefined = req.body as BodyInit | undefined;
  if (req.chunked && req.body !== undefined) {
    const bytes = typeof req.body === 'string' ? new TextEncoder().encode(req.body) : req.body;
    const size = req.chunked;
    let at = 0;
    body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= bytes.length) return c.close();
        c.enqueue(bytes.slice(at, (at += size)));
      },
    });
  }
  const url = w.url.replace(/\/$/, '') + req.path;
  if (new URL(url).host !== new URL(w.url).host) throw new Error(`fuzzer bug: ${url} leaves the worker`);
  const leave = new AbortController();
  const signal = AbortSignal.any([AbortSignal.timeout(REQUEST_TIMEOUT_MS), leave.signal]);
  const init = { method: req.method, headers, body, signal, ...(req.chunked ? { duplex: 'half' } : {}) } as RequestInit;
  if (req.leaveAfterMs !== undefined) {
    // A client that leaves: whatever it got is fine; what counts is that the worker stops (checked after the run).
    const timer = setTimeout(() => leave.abort(), req.leaveAfterMs);
    try {
      const res = await fetch(url, init);
      lastStatus = res.status;
      if (res.status >= 500) fail(req, `a ${res.status} from the worker`);
      await res.text();
    } catch (err) {
      if (!leave.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
    }
    stats.total++;
    stats.left++;
    return;
  }

  let res: Response;
  let text: string;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'UND_ERR_INVALID_ARG') throw new Error(`fuzzer bug: fetch cannot send this request: ${describeError(err)}\n  request: ${show(req)}`);
    fail(req, 'no response (connection dropped, refused or timed out)', describeError(err));
  }
  stats.total++;
  lastStatus = res.status;
  if (res.headers.get('x-content-type-options') !== 'nosniff') fail(req, `a ${res.status} without X-Content-Type-Options: nosniff`);
  stats.byStatus.set(res.status, (stats.byStatus.get(res.status) ?? 0) + 1);
  if (res.status >= 500) {
    const b = req.method === 'HEAD' ? '' : await res.text().catch((e) => `(body unreadable: ${describeError(e)})`);
    fail(req, `a ${res.status} from the worker`, short(b, 500));
  }
  if (req.method === 'HEAD') {
    await res.body?.cancel().catch(() => {});
    return;
  }
  try {
    text = await res.text();
  } catch (err) {
    fail(req, `the ${res.status} response body was cut short (dropped connection)`, describeError(err));
  }
  if (res.status >= 300 || res.status < 200) return checkErrorShape(req, res.status, text, 'response');
  const type = res.headers.get('content-type') ?? '';
  // A model file (with a key that may read it): the manifest is JSON, a shard is bytes.
  if (/^\/v1\/models\/[^/]+\/files\//.test(req.path) && req.method === 'GET') {
    if (!/^(application\/json|application\/octet-stream)/.test(type)) fail(req, `a model file with content-type ${type || 'none'}`);
    return;
  }
  const generation = /^\/v1\/(chat\/)?completions(\?|#|$)/.test(req.path) && req.method === 'POST';
  if (generation && wantsStream(req) !== type.startsWith('text/event-stream')) {
    fail(req, `a 200 with content-type ${type || 'none'} for stream: ${wantsStream(req)}`, short(text, 300));
  }
  if (type.startsWith('text/event-stream')) {
    stats.streamed++;
    stats.generated += generation ? 1 : 0;
    return checkStream(req, text, generation);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    fail(req, `a ${res.status} whose body is not JSON (content-type ${type || 'none'})`, short(text, 500));
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail(req, `a ${res.status} whose body is not a JSON object`, short(text, 500));
  if (generation) {
    stats.generated++;
    const r = json as { choices?: { index: number }[]; usage?: { completion_tokens: number }; ctc_edge?: { rounds: number } };
    const want = choicesOf(req) ?? r.choices?.length;
    if (want !== undefined && want > 1) stats.severalChoices++;
    if (!Array.isArray(r.choices) || r.choices.length !== want || r.choices.some((c, i) => c.index !== i)) fail(req, `a 200 completion without its ${want} choices in order`, short(text, 500));
    checkCost(req, r.usage, r.ctc_edge);
  }
}

/** Whether the body asks for a stream (as the worker reads it: JSON text; BOM and byte bodies are not looked into). */
function wantsStream(req: FuzzRequest): boolean {
  try {
    return typeof req.body === 'string' && (JSON.parse(req.body.replace(/^\ufeff/, '')) as { stream?: unknown }).stream === true;
  } catch {
    return false;
  }
}

function describeError(err: unknown): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  return `${e?.name}: ${e?.message}${e?.cause ? ` (cause: ${e.cause.name}: ${e.cause.message}${e.cause.code ? ` [${e.cause.code}]` : ''})` : ''}`;
}

// =========================================================================================== the test
describe('fuzzing', () => {
  it(`${RUNS} hostile requests: no 5xx, no dropped connection, OpenAI's error shape; a normal request works after`, async () => {
    console.log(`[fuzz] seed ${SEED}${process.env.FUZZ_PATH ? ` path ${process.env.FUZZ_PATH}` : ''}, ${RUNS} runs (replay: FUZZ_SEED=${SEED} npx vitest run --project worker test/worker/fuzz.test.ts)`);
    const t0 = Date.now();
    const summary = () => {
      const statuses = [...stats.byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
      console.log(`[fuzz] ${stats.total} requests in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${statuses}; ${stats.generated} generated (${stats.streamed} streamed, ${stats.severalChoices} of several choices); ${stats.left} clients left mid-request`);
    };
    // FUZZ_KEEP_GOING=1 (exploration): record every failing run instead of stopping at the first; each is then
    // replayed and shrunk on its own with FUZZ_SEED=<seed> FUZZ_PATH=<run>.
    const keepGoing = !!process.env.FUZZ_KEEP_GOING && !process.env.FUZZ_PATH;
    const failures: string[] = [];
    let run = -1;
    try {
      await fc.assert(
        fc.asyncProperty(arbRequest, async (req) => {
          run++;
          try {
            await sendChecked(req);
          } catch (err) {
            if (!keepGoing) throw err;
            failures.push(`FUZZ_SEED=${SEED} FUZZ_PATH=${run}: ${(err as Error).message}`);
          }
        }),
        // With FUZZ_PATH, only that run (and its shrinks).
        { numRuns: process.env.FUZZ_PATH ? 1 : RUNS, seed: SEED, ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}), endOnFailure: false, verbose: 1 },
      );
    } catch (err) {
      const path = /path: "([^"]*)"/.exec((err as Error).message)?.[1];
      if (path) console.log(`[fuzz] replay the shrunk case: FUZZ_SEED=${SEED} FUZZ_PATH=${path} npx vitest run --project worker test/worker/fuzz.test.ts`);
      throw err;
    } finally {
      summary();
    }
    if (failures.length) console.log(`[fuzz] ${failures.length} failing runs:\n${failures.join('\n')}`);
    expect(failures, 'failing runs (FUZZ_KEEP_GOING)').toEqual([]);
    if (!process.env.FUZZ_PATH) {
      // The generator must reach the generation path, not only the validation errors.
      expect(stats.generated, 'requests that generated').toBeGreaterThanOrEqual(RUNS * 0.1);
    }

    // Nothing generates on for a client that left: the metered tenants' objects are no longer charged.
    await new Promise((r) => setTimeout(r, 1000));
    const settled = await Promise.all(['leaver', 'fuzz'].map((t) => tenantTotals(w, t)));
    await new Promise((r) => setTimeout(r, 1500));
    const later = await Promise.all(['leaver', 'fuzz'].map((t) => tenantTotals(w, t)));
    expect(later.map((t) => t.charges)).toEqual(settled.map((t) => t.charges));
    // Storage: the fuzz tenant keeps at most its max_sessions (3) sessions, each at most a full context.
    const stored = later[1];
    console.log(`[fuzz] the fuzz tenant stores ${stored.sessions} sessions, ${stored.storedBytes} bytes`);
    expect(stored.sessions).toBeLessThanOrEqual(TENANTS.fuzz.max_sessions);
    expect(stored.storedBytes).toBeLessThanOrEqual(TENANTS.fuzz.max_sessions * 8 * 2 ** 20);

    // A normal request still works, and gives what it gave before the fuzzing.
    const after = await greedy();
    expect(after.length).toBeGreaterThan(0);
    expect(after).toBe(before);
    const health = await w.fetch('/health');
    expect(health.status).toBe(200);
    await health.text();
  }, 900_000);
});
