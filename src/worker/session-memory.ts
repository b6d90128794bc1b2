/**
 * The isolate's memory budget for idle sessions. An isolate has 128 MB and many session objects can share
 * it; each holds its KV + hidden rows in memory (kvLength x the engine's bytes per position,
 * DecodingSession.kvBytesPerToken). Persistent sessions stay in memory (the fast path) until the
 * isolate's sessions together exceed the budget; then the least recently used idle ones drop their state,
 * which they restore from SQLite when next used (a few ms, see docs/SERVING.md). Plain code, tested in Node.
 */

/**
 * Default SESSION_MEMORY_MB: KV held in memory by the idle session objects of one isolate. An isolate has
 * 128 MB: ORT's wasm heap takes ~35-40 MiB, the JS heap ~15, the request running now its own KV (~6.5 MiB
 * at 500 tokens) plus the recycled buffers, and the JS engine lets tens of MiB of garbage pile up before
 * it collects. Measured (test/worker/memory.test.ts, 12 sessions of 500 tokens): a peak of 109-116 MiB at 16,
 * ~136 MiB at 32. So 16: two full-context sessions stay in memory, the others restore from storage.
 */
export const DEFAULT_SESSION_MEMORY_MB = 16;

/** The budget in bytes from the SESSION_MEMORY_MB setting (MiB; unset: the default). */
export function memoryBudgetBytes(setting: string | undefined): number {
  return Number(setting ?? DEFAULT_SESSION_MEMORY_MB) * 2 ** 20;
}

/** What the table needs of a session object. */
export interface ResidentSession {
  /** Generating now: never dropped. */
  readonly busy: boolean;
  /** Drops the in-memory state (restored from storage when next used). */
  forget(): void;
}

/**
 * Session objects of one isolate that hold state in memory, by object id. Weak references: an object the
 * runtime evicts must not be kept alive by this table (its entry goes when it is found collected).
 */
export class ResidentSessions<T extends ResidentSession> {
  private readonly entries = new Map<string, { ref: WeakRef<T>; bytes: number; used: number }>();

  /** Records that `obj` (id `key`) holds `bytes` now, used at `now` (ms). */
  set(key: string, obj: T, bytes: number, now: number): void {
    this.entries.set(key, { ref: new WeakRef(obj), bytes, used: now });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Bytes held by the live entries (collected ones are removed). */
  total(): number {
    let total = 0;
    for (const [k, r] of this.entries) {
      if (r.ref.deref() === undefined) this.entries.delete(k); // the runtime evicted that object
      else total += r.bytes;
    }
    return total;
  }

  /**
   * While the total exceeds `budget`, makes the least recently used idle objects other than `self` forget
   * their state (their buffers serve the next session instead of becoming garbage). Returns the ids dropped.
   */
  enforce(budget: number, self: T): string[] {
    let total = this.total();
    const dropped: string[] = [];
    if (total <= budget) return dropped;
    const lru = [...this.entries.entries()].sort((a, b) => a[1].used - b[1].used);
    for (const [k, r] of lru) {
      if (total <= budget) break;
      const obj = r.ref.deref();
      if (!obj || obj === self || obj.busy) continue;
      obj.forget(); // expected to delete its own entry
      this.entries.delete(k);
      total -= r.bytes;
      dropped.push(k);
    }
    return dropped;
  }
}
