/**
 * The events of one generation, from the session object to the Worker that reads them over RPC
 * (SessionDO.generate returns an RPC target whose `next()` is `take()` here). Plain code, tested in Node.
 *
 * Backpressure and disconnects: `send` returns at once while fewer than `maxQueued` events wait; past that
 * it waits for the reader to take them, and a reader that takes nothing for `stallMs` counts as gone (it
 * must not hold the session's lock forever). `cancel()` (the reader went away: its client disconnected, or
 * the RPC stub was disposed) drops what waits, makes every later `send` return false and calls `onCancel`.
 */
export class EventChannel<T> {
  private queue: T[] = [];
  private closed = false;
  private cancelled = false;
  private wakeReader: (() => void) | null = null;
  private wakeWriter: (() => void) | null = null;

  constructor(
    private readonly onCancel: () => void,
    private readonly maxQueued = 16,
    private readonly stallMs = 30_000,
  ) {}

  /** The reader is gone (cancelled or stalled). */
  get gone(): boolean {
    return this.cancelled;
  }

  /** Queues an event; false when the reader is gone (the event is dropped). */
  async send(ev: T): Promise<boolean> {
    if (this.cancelled || this.closed) return false;
    this.queue.push(ev);
    this.wakeReader?.();
    if (this.queue.length < this.maxQueued) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const taken = await new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.stallMs);
      this.wakeWriter = () => resolve(true);
    });
    clearTimeout(timer);
    this.wakeWriter = null;
    if (!taken) this.cancel(); // stalled: as if disconnected
    return !this.cancelled;
  }

  /** No more events: the reader's next `take` returns what is left, then []. */
  close(): void {
    this.closed = true;
    this.wakeReader?.();
  }

  /** The events waiting (at least one), or [] once the channel is closed and drained, or cancelled. */
  async take(): Promise<T[]> {
    while (this.queue.length === 0 && !this.closed && !this.cancelled) {
      await new Promise<void>((resolve) => (this.wakeReader = resolve));
      this.wakeReader = null;
    }
    const out = this.queue;
    this.queue = [];
    this.wakeWriter?.();
    return out;
  }

  /** The reader went away. Idempotent; nothing happens once the channel is closed and drained. */
  cancel(): void {
    if (this.cancelled || (this.closed && this.queue.length === 0)) return;
    this.cancelled = true;
    this.queue = [];
    this.wakeWriter?.();
    this.wakeReader?.();
    this.onCancel();
  }
}
