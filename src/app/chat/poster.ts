// The audit channel's poster: one line per audit event, at most one message per channel per
// interval (each platform says its own; some allow about one per second per channel). Lines that
// arrive while a channel waits are queued and sent together in the next message, in order: queue,
// never drop. A platform's client waits out its rate limits (429 Retry-After); other failures
// are retried with backoff.
import { jitteredBackoff } from '../../core/backoff.js';

export type PostFn = (channel: string, text: string) => Promise<void>;

interface ChannelQueue {
  lines: string[];
  running: boolean;
  lastPostAt: number;
}

const MAX_CHARS = 3500;
const MAX_ATTEMPTS = 5;

export class ChannelPoster {
  private queues = new Map<string, ChannelQueue>();
  private idle: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly post: PostFn,
    private readonly intervalMs: number,
    private readonly onError: (channel: string, err: unknown, dropped: string[]) => void,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  enqueue(channel: string, line: string): void {
    let q = this.queues.get(channel);
    if (!q) {
      q = { lines: [], running: false, lastPostAt: 0 };
      this.queues.set(channel, q);
    }
    q.lines.push(line);
    if (!q.running) void this.drain(channel, q);
  }

  /** Lines waiting (all channels). */
  pending(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.lines.length;
    return n;
  }

  /** Resolves when every queued line was posted (or given up on). */
  async flush(): Promise<void> {
    if ([...this.queues.values()].every((q) => !q.running)) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** Stops posting after giving queued lines up to `graceMs` to go out. */
  async close(graceMs = 0): Promise<void> {
    if (graceMs > 0) await Promise.race([this.flush(), new Promise((r) => setTimeout(r, graceMs))]);
    this.closed = true;
  }

  private async drain(channel: string, q: ChannelQueue): Promise<void> {
    q.running = true;
    try {
      while (q.lines.length > 0 && !this.closed) {
        const wait = q.lastPostAt + this.intervalMs - Date.now();
        if (wait > 0) await this.sleep(wait);
        // Take as many whole lines as fit in one message.
        let size = 0;
        let take = 0;
        while (take < q.lines.length && (take === 0 || size + q.lines[take]!.length + 1 <= MAX_CHARS)) {
          size += q.lines[take]!.length + 1;
          take++;
        }
        const batch = q.lines.slice(0, take);
        let attempt = 0;
        for (;;) {
          try {
            await this.post(channel, batch.join('\n'));
            q.lines.splice(0, take);
            break;
          } catch (err) {
            attempt++;
            if (attempt >= MAX_ATTEMPTS || this.closed) {
              q.lines.splice(0, take);
              this.onError(channel, err, batch);
              break;
            }
            await this.sleep(jitteredBackoff(attempt, 500, 30_000));
          }
        }
        q.lastPostAt = Date.now();
      }
    } finally {
      q.running = false;
      if ([...this.queues.values()].every((x) => !x.running)) for (const fn of this.idle.splice(0)) fn();
    }
  }
}
