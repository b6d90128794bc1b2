/**
 * Which KV positions a session's save writes and its restore reads. Plain decisions over lengths (tested
 * in Node); the bytes per position and the chunking are the engine's (DecodingSession.stateChunks cuts
 * [from, kvLength) at KVCache.bytesPerToken + the hidden row, within SQLite's value limit).
 */

/**
 * Stored positions that still match memory after a request: those stored before it (`storedKv`), within
 * the prefix the request reused untouched (`cachedTokens`; later positions were rewritten) and within the
 * session's KV now (`kvLength`). None when KV is not persisted. The save keeps these and appends the rest.
 */
export function validStoredKv(o: { storedKv: number; cachedTokens: number; kvLength: number; persistKv: boolean }): number {
  return o.persistKv ? Math.min(o.storedKv, o.cachedTokens, o.kvLength) : 0;
}

/**
 * Whether a restore reads the stored KV (else it recomputes it from the tokens): only if this very graph
 * wrote it (`sameGraph`: a re-export under the same name keeps the tokens and recomputes their KV), KV is
 * persisted, and the stored chunks cover the snapshot's kvLength (they may run past it only if a save was
 * cut short; the restore takes exactly kvLength).
 */
export function restoresStoredKv(o: { sameGraph: boolean; persistKv: boolean; storedKv: number; snapshotKv: number }): boolean {
  return o.sameGraph && o.persistKv && o.storedKv > 0 && o.storedKv >= o.snapshotKv;
}

/** KV_PERSIST: "always" (default) or "never" (recompute on restore). */
export function persistsKv(setting: string | undefined): boolean {
  return setting !== 'never';
}
