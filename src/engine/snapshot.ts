/**
 * A session's state as JSON (SessionSnapshot) plus per-position bytes (exportState /
 * stateChunks), and back (restoreSnapshot). With the bytes a restored session continues
 * bit-identically; without them its next request recomputes the KV by a prefill.
 */
import { EngineError } from './errors.js';
import { Rng } from './sampling.js';
import type { SessionState } from './session-state.js';

/**
 * JSON-safe state of a session. Per-position bytes travel separately (exportKV / kvChunks): in
 * version 2 each chunk holds its positions' KV and then their base hidden rows (float32 [n, d];
 * prefix-attending draft heads rebuild their own cache from them, exactly, so a restored session
 * drafts as the uninterrupted one would); version 1 chunks hold KV only.
 */
export interface SessionSnapshot {
  version: 1 | 2;
  /** sha256 of the base model: a snapshot only restores on the same model. */
  model: string;
  tokens: number[];
  /** Positions covered by the KV cache (tokens.length - 1 when in sync, less if not). */
  kvLength: number;
  /** Hidden row [d] at position kvLength - 1 (float32 values, exact as JSON numbers), or null. */
  hidden: number[] | null;
  /** RNG state and the seed it came from (a same-seed continuation keeps the stream). */
  rng: { seed: number; state: number[] } | null;
  /** Version 2: the chunks' hidden rows are valid from this position to kvLength. */
  rowsFrom?: number;
}

export function takeSnapshot(s: SessionState, model: string): SessionSnapshot {
  const kvLength = s.kv.length;
  return {
    version: 2,
    model,
    tokens: [...s.tokens],
    kvLength,
    hidden: s.hidden && kvLength > 0 ? Array.from(s.hidden) : null,
    rng: s.rng && s.rngSeed !== null ? { seed: s.rngSeed, state: s.rng.getState() } : null,
    rowsFrom: s.rows.end >= kvLength ? Math.min(s.rows.from, kvLength) : kvLength,
  };
}

/** Bytes per position of exportState (KV + hidden row), also what a session holds in memory per token. */
export function bytesPerPosition(s: SessionState): number {
  return s.kv.bytesPerToken + s.rows.d * 4;
}

/**
 * State of positions [start, end): their KV bytes, then their base hidden rows (float32 [n, d];
 * zeros where the session does not hold a row).
 */
export function exportState(s: SessionState, start: number, end: number): Uint8Array {
  const kv = s.kv.exportRange(start, end);
  const d = s.rows.d;
  const out = new Uint8Array(kv.byteLength + (end - start) * d * 4);
  out.set(kv);
  s.rows.copyInto(new Float32Array(out.buffer, kv.byteLength, (end - start) * d), start, end);
  return out;
}

/** exportState of positions [from, kvLength) in chunks of at most maxBytes, with their ranges; made
 *  one at a time as they are taken, so a save holds one chunk's copy, not the whole session's. */
export function* stateChunks(s: SessionState, from: number, maxBytes: number): Generator<{ start: number; end: number; data: Uint8Array }> {
  for (const [start, end] of s.kv.chunkRanges(maxBytes, from, s.kv.length, bytesPerPosition(s))) {
    yield { start, end, data: exportState(s, start, end) };
  }
}

/** Throws unless the snapshot is of a known version and of this model. */
export function checkSnapshot(snap: SessionSnapshot, model: string): void {
  if (snap.version !== 1 && snap.version !== 2) throw new EngineError('invalid_request', `unknown snapshot version ${snap.version}`);
  if (snap.model !== model) throw new EngineError('model_mismatch', 'snapshot was taken with another model');
}

/**
 * Restores tokens, RNG and, with `chunks` (those of stateChunks/exportState from position 0,
 * covering at least snap.kvLength positions), the KV and hidden rows into a fresh state.
 */
export function restoreSnapshot(s: SessionState, snap: SessionSnapshot, chunks?: Iterable<Uint8Array>): void {
  s.tokens = [...snap.tokens];
  if (snap.rng) {
    s.rng = new Rng(snap.rng.state);
    s.rngSeed = snap.rng.seed;
  }
  if (!chunks || snap.kvLength <= 0) return;
  if (snap.kvLength > s.tokens.length) throw new EngineError('invalid_request', 'snapshot kvLength exceeds its tokens');
  const d = s.rows.d;
  // version 2 chunks: KV bytes, then the same positions' hidden rows
  const kvPer = s.kv.bytesPerToken;
  const per = snap.version === 1 ? kvPer : kvPer + d * 4;
  const rowsFrom = snap.version === 2 ? (snap.rowsFrom ?? snap.kvLength) : snap.kvLength;
  // Chunk by chunk as they are read (a restore holds one stored chunk at a time, not the session);
  // chunks may run past kvLength (a save cut short): exactly kvLength positions are taken.
  s.kv.reserve(snap.kvLength);
  for (const c of chunks) {
    const have = s.kv.length;
    const n = c.byteLength / per;
    if (!Number.isInteger(n)) throw new EngineError('invalid_request', `a state chunk of ${c.byteLength} bytes is not whole positions`);
    const take = Math.min(n, snap.kvLength - have);
    if (take <= 0) break;
    s.kv.importRange(have, c.subarray(0, take * kvPer));
    const from = Math.max(have, rowsFrom);
    if (snap.version === 2 && have + take > from) {
      const rows = new Float32Array(c.slice(n * kvPer + (from - have) * d * 4, n * kvPer + take * d * 4).buffer);
      s.rows.record(from, rows, null);
    }
  }
  if (s.kv.length === 0) return; // no chunks: the next generate recomputes the KV
  if (s.kv.length !== snap.kvLength) {
    throw new EngineError('invalid_request', `KV chunks hold ${s.kv.length} positions, snapshot says ${snap.kvLength}`);
  }
  s.hidden = snap.hidden ? Float32Array.from(snap.hidden) : null;
  if (s.hidden && s.hidden.length !== d) throw new EngineError('invalid_request', 'snapshot hidden has the wrong width');
  if (!(snap.version === 2 && rowsFrom < snap.kvLength) && s.hidden) s.rows.record(snap.kvLength - 1, s.hidden, null);
}
