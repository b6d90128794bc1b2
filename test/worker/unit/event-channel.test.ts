/** The events' queue between a session object and the Worker (src/worker/event-channel.ts), in Node. */
import { describe, expect, it } from 'vitest';
import { EventChannel } from '../../../src/worker/event-channel.js';

describe('EventChannel', () => {
  it('delivers events in order, in batches, then [] after close', async () => {
    const ch = new EventChannel<number>(() => {});
    const first = ch.take(); // waits for the first event
    expect(await ch.send(1)).toBe(true);
    expect(await first).toEqual([1]);
    await ch.send(2);
    await ch.send(3);
    ch.close();
    expect(await ch.take()).toEqual([2, 3]);
    expect(await ch.take()).toEqual([]);
    expect(await ch.send(4)).toBe(false);
  });

  it('cancel drops what waits, fails later sends and calls onCancel once; after the end it is a no-op', async () => {
    let cancels = 0;
    const ch = new EventChannel<number>(() => cancels++);
    await ch.send(1);
    ch.cancel();
    ch.cancel();
    expect(cancels).toBe(1);
    expect(ch.gone).toBe(true);
    expect(await ch.send(2)).toBe(false);
    expect(await ch.take()).toEqual([]);

    const done = new EventChannel<number>(() => cancels++);
    await done.send(1);
    done.close();
    expect(await done.take()).toEqual([1]);
    done.cancel(); // the reader disposes of its stub after the last event
    expect(cancels).toBe(1);
    expect(done.gone).toBe(false);
  });

  it('backpressure: past maxQueued a send waits for the reader; a reader that stalls counts as gone', async () => {
    let cancels = 0;
    const ch = new EventChannel<number>(() => cancels++, 2, 50);
    expect(await ch.send(1)).toBe(true);
    const second = ch.send(2); // the queue is full now: waits
    let settled = false;
    void second.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    expect(await ch.take()).toEqual([1, 2]);
    expect(await second).toBe(true);
    // Nobody takes: after stallMs the send gives up and the channel is cancelled.
    await ch.send(3);
    const t0 = performance.now();
    expect(await ch.send(4)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40);
    expect(cancels).toBe(1);
  });
});
