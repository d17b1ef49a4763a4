// A chat platform that exists only in tests: it implements the ChatPlatform port and nothing
// else, keeping what it is asked to show as plain lines a test can read. Its people are the
// policy file's `principals.<p>.memo` ids. That this is all a platform takes is the point.
import type { ChatMessage, ChatPlatform, Destination } from '../../src/app/chat/platform.js';
import { auditLine, cardText } from '../../src/core/messages.js';
import { own, type PolicyBook } from '../../src/core/policy.js';
import type { AuditEvent, PrincipalId } from '../../src/core/types.js';

export interface MemoPost {
  ref: string;
  to: Destination;
  kind: ChatMessage['kind'];
  /** The request it is about. */
  request: string;
  text: string;
}

export class MemoChat implements ChatPlatform {
  readonly name = 'memo';
  readonly auditFeed = { intervalMs: 0 };
  readonly posts: MemoPost[] = [];
  readonly updates: Array<{ ref: string; request: string; text: string }> = [];
  /** Audit channel → its lines, in the order posted. */
  readonly channels = new Map<string, string[]>();

  constructor(private readonly book: () => PolicyBook) {}

  health(): string {
    return 'ok';
  }

  async recipient(principal: PrincipalId): Promise<string | null> {
    return own(this.book().principals, principal)?.memo ?? null;
  }

  async post(to: Destination, m: ChatMessage): Promise<string> {
    const ref = `memo-${this.posts.length + 1}`;
    this.posts.push({ ref, to, kind: m.kind, request: requestOf(m), text: show(m) });
    return ref;
  }

  async update(ref: string, m: ChatMessage): Promise<void> {
    this.updates.push({ ref, request: requestOf(m), text: show(m) });
  }

  auditLine(event: AuditEvent): string {
    return auditLine(event, { esc: (t) => t, strong: (t) => `*${t}*`, clip: (t) => t });
  }

  async postText(channel: string, text: string): Promise<void> {
    this.channels.set(channel, [...(this.channels.get(channel) ?? []), ...text.split('\n')]);
  }

  failure(err: unknown): { code: string; permanent: boolean } {
    return { code: err instanceof Error ? err.message : String(err), permanent: true };
  }
}

const requestOf = (m: ChatMessage): string => ('card' in m ? m.card.request : m.request).id;

function show(m: ChatMessage): string {
  switch (m.kind) {
    case 'approval':
    case 'card_fallback':
      return cardText(m.card.request, m.card.scope, m.card.quorum, m.card.outcome);
    case 'notice':
      return m.notice.headline;
    case 'active':
      return `${m.request.id} is open: ${m.connections.map((c) => c.command).join(' ; ')}`;
    case 'expiring':
      return `${m.request.id} closes soon`;
  }
}
