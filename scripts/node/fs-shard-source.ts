/** ShardSource over a local model folder (Node only: uses node:fs). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ShardSource } from '../../src/engine/index.js';

export function fsShardSource(dir: string): ShardSource {
  return {
    async get(path: string) {
      try {
        const buf = await readFile(join(dir, path));
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
  };
}
