/** The isolate's memory budget for idle sessions (src/worker/session-memory.ts), in Node. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SESSION_MEMORY_MB, memoryBudgetBytes, ResidentSessions } from '../../../src/worker/session-memory.js';

const MiB = 2 ** 20;

class FakeSession {
  busy = false;
  forgotten = 0;
  constructor(readonly table: ResidentSessions<FakeSession>, readonly id: string) {}
  forget() {
    this.forgotten++;
    this.table.delete(this.id);
  }
}

describe('memoryBudgetBytes', () => {
  it('SESSION_MEMORY_MB in MiB, default 16', () => {
    expect(DEFAULT_SESSION_MEMORY_MB).toBe(16);
    expect(memoryBudgetBytes(undefined)).toBe(16 * MiB);
    expect(memoryBudgetBytes('1.5')).toBe(1.5 * MiB);
    expect(memoryBudgetBytes('0')).toBe(0);
  });
});

describe('ResidentSessions', () => {
  it('within the budget nothing is dropped', () => {
    const t = new ResidentSessions<FakeSession>();
    const a = new FakeSession(t, 'a');
    const b = new FakeSession(t, 'b');
    t.set('a', a, 4 * MiB, 1);
    t.set('b', b, 4 * MiB, 2);
    expect(t.enforce(8 * MiB, b)).toEqual([]);
    expect(t.total()).toBe(8 * MiB);
  });

  it('over the budget the least recently used idle sessions forget, never the caller or a busy one', () => {
    const t = new ResidentSessions<FakeSession>();
    const s = ['a', 'b', 'c', 'd'].map((id) => new FakeSession(t, id));
    s.forEach((x, i) => t.set(x.id, x, 6.5 * MiB, i)); // 26 MiB
    s[0].busy = true; // the oldest is generating
    expect(t.enforce(16 * MiB, s[3])).toEqual(['b', 'c']);
    expect(s.map((x) => x.forgotten)).toEqual([0, 1, 1, 0]);
    expect(t.total()).toBe(13 * MiB);
    // The caller alone over the budget stays (it is the one being used).
    const u = new ResidentSessions<FakeSession>();
    const me = new FakeSession(u, 'me');
    u.set('me', me, 40 * MiB, 0);
    expect(u.enforce(16 * MiB, me)).toEqual([]);
    expect(me.forgotten).toBe(0);
  });

  it('a later use makes a session the most recent one', () => {
    const t = new ResidentSessions<FakeSession>();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => new FakeSession(t, id));
    t.set('a', a, 8 * MiB, 1);
    t.set('b', b, 8 * MiB, 2);
    t.set('a', a, 8 * MiB, 3); // a used again
    t.set('c', c, 8 * MiB, 4);
    expect(t.enforce(16 * MiB, c)).toEqual(['b']);
  });
});
