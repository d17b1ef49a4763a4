// The local channel's notifier: keeps the latest notifications and audit events in memory for
// the CLI / console (and later server-sent events), and fans out to other notifiers.
import type { Notification, Notifier } from '../../app/ports.js';
import type { AuditEvent } from '../../core/types.js';
import type { ApprovalRoute } from '../../core/workflow.js';

export interface FeedItem {
  seq: number;
  at: number;
  notification?: { kind: Notification['kind']; requestId: string; status: string; actor: string; approvers?: string[]; extendOptionsMs?: number[]; route?: ApprovalRoute };
  audit?: AuditEvent;
}

export class LocalFeed implements Notifier {
  private items: FeedItem[] = [];
  private seq = 0;
  private listeners = new Set<(item: FeedItem) => void>();

  constructor(private readonly capacity = 500) {}

  async notify(n: Notification): Promise<void> {
    this.push({
      notification: {
        kind: n.kind,
        requestId: n.request.id,
        status: n.request.status,
        actor: n.actor,
        ...(n.approvers ? { approvers: n.approvers } : {}),
        ...(n.extendOptionsMs ? { extendOptionsMs: n.extendOptionsMs } : {}),
        ...(n.route ? { route: n.route } : {}),
      },
    });
  }

  async audit(event: AuditEvent): Promise<void> {
    this.push({ audit: event });
  }

  since(seq: number): FeedItem[] {
    return this.items.filter((i) => i.seq > seq);
  }

  subscribe(fn: (item: FeedItem) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private push(partial: Omit<FeedItem, 'seq' | 'at'>): void {
    const item: FeedItem = { seq: ++this.seq, at: Date.now(), ...partial };
    this.items.push(item);
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
    for (const fn of this.listeners) fn(item);
  }
}

/** Sends every notification to each notifier; one failing does not stop the others. */
export class FanoutNotifier implements Notifier {
  constructor(private readonly targets: Notifier[], private readonly onError: (err: unknown) => void = () => {}) {}

  async notify(n: Notification): Promise<void> {
    await Promise.all(this.targets.map((t) => t.notify(n).catch(this.onError)));
  }

  async audit(e: AuditEvent): Promise<void> {
    await Promise.all(this.targets.map((t) => t.audit(e).catch(this.onError)));
  }
}
