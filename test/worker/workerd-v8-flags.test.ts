/**
 * Local workerd runs with V8 flags (scripts/node/workerd-v8-flags.ts): the flags reach V8 through the config
 * miniflare sends, and workerd serves as before. `--trace-gc` makes them visible: V8 then logs each GC.
 */
import type { Readable } from 'node:stream';
import { Miniflare } from 'miniflare';
import { afterEach, expect, it } from 'vitest';
import { WORKERD_V8_FLAGS, workerdV8FlagsEnv } from '../../scripts/node/workerd-v8-flags';

const saved = { ...process.env };
afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

it('workerd started by miniflare gets the V8 flags and serves requests', async () => {
  // Another file in this worker process may have started workerd already and set the variables.
  for (const k of ['MINIFLARE_WORKERD_PATH', 'CTC_WORKERD', 'CTC_WORKERD_V8_FLAGS']) delete process.env[k];
  const env = workerdV8FlagsEnv();
  expect(env.MINIFLARE_WORKERD_PATH).toMatch(/workerd-v8-flags\.sh$/);
  Object.assign(process.env, env, { CTC_WORKERD_V8_FLAGS: [...WORKERD_V8_FLAGS, '--trace-gc'].join(' ') });
  let log = '';
  const mf = new Miniflare({
    modules: true,
    // Garbage for dozens of young-generation collections: workerd's stdout is a pipe, so V8's trace lines
    // arrive in blocks of a few KB.
    script: 'export default { fetch() { let o = null; for (let i = 0; i < 5e6; i++) o = { i, p: o && o.i }; return new Response(String(o.i)); } }',
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
      stdout.on('data', (d: Buffer) => (log += d));
      stderr.on('data', (d: Buffer) => (log += d));
    },
  });
  try {
    const res = await mf.dispatchFetch('http://localhost/');
    expect(await res.text()).toBe('4999999');
  } finally {
    await mf.dispose();
  }
  expect(log).toMatch(/Scavenge|Mark-Compact/);
});
