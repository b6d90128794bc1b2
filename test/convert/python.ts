/**
 * Debian's python3 for the test/convert tests: the one that imports what training/ needs (torch, onnx,
 * numpy, tqdm: training/progress.py), run from the repository root, and the float32 files its scripts write.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../..');

/** A python3 that imports what training/ needs, or null (the tests then say so and skip). */
export const PY: string | null =
  ([process.env.PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[]).find(
    (py) => spawnSync(py, ['-c', 'import torch, onnx, numpy, tqdm'], { encoding: 'utf8' }).status === 0,
  ) ?? null;

export const PY_MISSING = 'no python3 with torch, onnx, numpy and tqdm (apt-get install python3-torch python3-onnx python3-numpy python3-tqdm)';

/** Runs PY with `args` from the repository root; its stdout, or an error with its output. */
export function py(args: string[]): string {
  const r = spawnSync(PY!, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PYTHONPATH: ROOT } });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** A little-endian float32 file as a Float32Array. */
export function readF32(path: string): Float32Array {
  const raw = readFileSync(path);
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}
