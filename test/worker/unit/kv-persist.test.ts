/** Which stored KV a save keeps and a restore reads (src/worker/kv-persist.ts), in Node. */
import { describe, expect, it } from 'vitest';
import { persistsKv, restoresStoredKv, validStoredKv } from '../../../src/worker/kv-persist.js';

describe('validStoredKv', () => {
  it('keeps the stored positions the request left untouched and that memory still holds', () => {
    expect(validStoredKv({ storedKv: 100, cachedTokens: 120, kvLength: 150, persistKv: true })).toBe(100); // appended to
    expect(validStoredKv({ storedKv: 100, cachedTokens: 40, kvLength: 150, persistKv: true })).toBe(40); // diverged at 40
    expect(validStoredKv({ storedKv: 100, cachedTokens: 100, kvLength: 30, persistKv: true })).toBe(30); // shorter now
    expect(validStoredKv({ storedKv: 100, cachedTokens: 100, kvLength: 150, persistKv: false })).toBe(0);
  });
});

describe('restoresStoredKv', () => {
  const ok = { sameGraph: true, persistKv: true, storedKv: 64, snapshotKv: 64 };
  it('reads stored KV only when this graph wrote it, KV is persisted and the chunks cover the snapshot', () => {
    expect(restoresStoredKv(ok)).toBe(true);
    expect(restoresStoredKv({ ...ok, storedKv: 80 })).toBe(true); // a save cut short: more chunks than kvLength
    expect(restoresStoredKv({ ...ok, sameGraph: false })).toBe(false);
    expect(restoresStoredKv({ ...ok, persistKv: false })).toBe(false);
    expect(restoresStoredKv({ ...ok, storedKv: 63 })).toBe(false);
    expect(restoresStoredKv({ ...ok, storedKv: 0, snapshotKv: 0 })).toBe(false);
  });

  it('KV_PERSIST: only "never" turns it off', () => {
    expect(persistsKv(undefined)).toBe(true);
    expect(persistsKv('always')).toBe(true);
    expect(persistsKv('never')).toBe(false);
  });
});
