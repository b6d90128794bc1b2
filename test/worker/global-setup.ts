/** Builds the worker bundle once (wrangler's own bundler, exactly what `wrangler deploy` uploads). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

const ROOT = resolve(import.meta.dirname, '../..');

declare module 'vitest' {
  export interface ProvidedContext {
    workerBundleDir: string;
  }
}

export default function setup(project: TestProject) {
  const out = mkdtempSync(join(tmpdir(), 'ctc-edge-bundle-'));
  const t0 = Date.now();
  const r = spawnSync(join(ROOT, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--env', '', '--outdir', out], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
  });
  if (r.status !== 0) throw new Error(`wrangler build failed:\n${r.stdout}\n${r.stderr}`);
  process.stderr.write(`[worker tests] bundle built in ${Date.now() - t0} ms: ${out}\n`);
  project.provide('workerBundleDir', out);
  return () => rmSync(out, { recursive: true, force: true });
}
