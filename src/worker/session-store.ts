/**
 * Session persistence in the Durable Object's SQLite storage.
 *
 * - `session_meta` (one row): model + manifest hash (a new model invalidates the session), the token ids
 *   (always), and the rest of the engine snapshot (rng state, last hidden row, ...) as JSON.
 * - `kv_chunks`: per-position state as position ranges [start, end) of the engine's export (KV, then the
 *   base hidden rows draft heads read: 13,312 bytes/token for the default model). SQLite values are capped at 2 MB, so a chunk holds at most
 *   the engine's STATE_CHUNK_BYTES; after a request only the new positions are appended (plus the one chunk that straddles
 *   the point where the context diverged, if any).
 * Everything is written in one synchronous transaction, so a crash never leaves tokens and KV disagreeing.
 */
import { STATE_CHUNK_BYTES } from '../engine/index';


export interface StoredMeta {
  model: string;
  modelSha: string;
  tokens: number[];
  /** Engine snapshot fields other than tokens and KV (JSON with typed arrays encoded, see encodeState). */
  state: unknown;
  updated: number;
}

export interface KvChunk {
  start: number;
  end: number;
  data: Uint8Array;
}

export class SessionStore {
  private schema = false;

  constructor(private readonly sql: SqlStorage, private readonly storage: DurableObjectStorage) {}

  /** Tables are created on the first save only: reads and ephemeral sessions never write storage (an
   *  object whose storage stays empty leaves nothing behind). */
  private exists(): boolean {
    if (!this.schema) {
      this.schema = this.sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv_chunks'`).toArray().length > 0;
    }
    return this.schema;
  }

  private ensureSchema(): void {
    if (this.exists()) return;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS session_meta (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      model TEXT NOT NULL, model_sha TEXT NOT NULL, tokens BLOB NOT NULL, state TEXT NOT NULL, updated INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS kv_chunks (start INTEGER PRIMARY KEY, end INTEGER NOT NULL, data BLOB NOT NULL)`);
    this.schema = true;
  }

  loadMeta(): StoredMeta | null {
    if (!this.exists()) return null;
    const row = this.sql.exec('SELECT model, model_sha, tokens, state, updated FROM session_meta WHERE id = 1').toArray()[0];
    if (!row) return null;
    const buf = row.tokens as ArrayBuffer;
    return {
      model: row.model as string,
      modelSha: row.model_sha as string,
      tokens: Array.from(new Int32Array(buf.slice(0))),
      state: decodeState(JSON.parse(row.state as string)),
      updated: row.updated as number,
    };
  }

  /** Positions covered by stored KV chunks, contiguous from 0. */
  kvLength(): number {
    if (!this.exists()) return 0;
    let end = 0;
    for (const r of this.sql.exec('SELECT start, end FROM kv_chunks ORDER BY start')) {
      if ((r.start as number) !== end) break;
      end = r.end as number;
    }
    return end;
  }

  /** KV chunks covering [0, upTo), in order (upTo must be a chunk boundary or the stored length), read
   *  from SQLite one at a time as they are taken. */
  *loadKv(upTo: number): Generator<Uint8Array> {
    if (!this.exists()) return;
    for (const r of this.sql.exec('SELECT start, end, data FROM kv_chunks WHERE end <= ? ORDER BY start', upTo)) {
      yield new Uint8Array(r.data as ArrayBuffer);
    }
  }

  /**
   * Saves a session: drops KV chunks that reach past `kvValid` (the stored positions that still match
   * memory), then appends `newChunks` (which must start where the kept chunks end) and replaces meta.
   * Returns the stored KV length afterwards.
   */
  save(meta: Omit<StoredMeta, 'updated'>, kvValid: number, makeChunks: (from: number) => Iterable<KvChunk>): number {
    this.ensureSchema();
    return this.storage.transactionSync(() => {
      this.sql.exec('DELETE FROM kv_chunks WHERE end > ?', kvValid);
      const from = this.kvLength();
      this.sql.exec('DELETE FROM kv_chunks WHERE start >= ?', from); // orphans past a gap
      let end = from;
      for (const c of makeChunks(from)) {
        if (c.start !== end) throw new Error(`KV chunk starts at ${c.start}, expected ${end}`);
        if (c.data.byteLength > STATE_CHUNK_BYTES) throw new Error(`KV chunk of ${c.data.byteLength} bytes exceeds ${STATE_CHUNK_BYTES}`);
        this.sql.exec('INSERT INTO kv_chunks (start, end, data) VALUES (?, ?, ?)', c.start, c.end, c.data);
        end = c.end;
      }
      this.sql.exec(
        `INSERT OR REPLACE INTO session_meta (id, model, model_sha, tokens, state, updated) VALUES (1, ?, ?, ?, ?, ?)`,
        meta.model,
        meta.modelSha,
        new Uint8Array(Int32Array.from(meta.tokens).buffer),
        JSON.stringify(encodeState(meta.state)),
        Date.now(),
      );
      return end;
    });
  }

  /** Forget the session: drop everything this object stored. */
  async clear(): Promise<void> {
    await this.storage.deleteAll();
    this.schema = false;
  }
}

// Typed arrays inside the engine snapshot survive JSON as {"$ta": "Float32Array", "b64": "..."}.
const TYPED = { Float32Array, Float64Array, Int32Array, Uint32Array, Uint8Array, Uint16Array, Int16Array, BigInt64Array, BigUint64Array };

export function encodeState(v: unknown): unknown {
  if (typeof v === 'bigint') return { $big: v.toString() };
  if (ArrayBuffer.isView(v)) {
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { $ta: v.constructor.name, b64: btoa(s) };
  }
  if (Array.isArray(v)) return v.map(encodeState);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encodeState(x)]));
  return v;
}

export function decodeState(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decodeState);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$big === 'string') return BigInt(o.$big);
    if (typeof o.$ta === 'string' && typeof o.b64 === 'string') {
      const bin = atob(o.b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const Ctor = TYPED[o.$ta as keyof typeof TYPED];
      if (!Ctor) throw new Error(`unknown typed array ${o.$ta}`);
      return new Ctor(bytes.buffer);
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, decodeState(x)]));
  }
  return v;
}
