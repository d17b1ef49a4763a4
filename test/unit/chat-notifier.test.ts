// The shared notifier's guarantees, deterministic and in memory (fakes of its ports, no clock):
// card updates never leave an older state on a card (out-of-order notifications, and two
// replicas whose updates land in the wrong order), an extension card keeps its outcome, and a
// card a platform refuses is stood in for, retried or sent to the approvers, and audited.
import { describe, expect, it } from 'vitest';
import { ChatNotifier, type ChatContext } from '../../src/app/chat/notifier.js';
import type { ChatMessage, ChatPlatform, Destination, MessageRefs, PostedMessage } from '../../src/app/chat/platform.js';
import type { Notification } from '../../src/app/ports.js';
import { cardText } from '../../src/core/messages.js';
import type { AccessRequest, AuditEvent } from '../../src/core/types.js';
import { testBook } from '../fixtures/book.js';
import { pendingRequest } from '../fixtures/requests.js';
import { BOB, CAROL, p } from '../fixtures/ids.js';

const BASE: AccessRequest = pendingRequest();
const approved = { ...BASE, status: 'approved' as const, decisions: [{ by: BOB, decision: 'approve' as const, at: BASE.createdAt + 1 }], version: 2 };
const active = { ...approved, status: 'active' as const, activatedAt: BASE.createdAt + 2, expiresAt: BASE.createdAt + 3_600_002, version: 3 };

/** The use cases as the notifier reads them: a stored request that the test moves on. */
function context(stored: { current: AccessRequest }, audited: Array<AuditEvent['details']> = []): ChatContext {
  return {
    policyBook: () => testBook(),
    get: async () => stored.current,
    approversFor: async () => [BOB, CAROL],
    checkDecide: async () => {},
    auditDelivery: async (_req, _actor, details) => void audited.push(details),
  };
}

class MemoryRefs implements MessageRefs {
  private sets = new Map<string, Map<string, PostedMessage>>();
  async add(platform: string, scope: string, id: string, messages: PostedMessage[]): Promise<void> {
    const key = `${platform}:${scope}:${id}`;
    const set = this.sets.get(key) ?? new Map<string, PostedMessage>();
    for (const m of messages) set.set(JSON.stringify(m), m);
    this.sets.set(key, set);
  }
  async list(platform: string, scope: string, id: string): Promise<PostedMessage[]> {
    return [...(this.sets.get(`${platform}:${scope}:${id}`)?.values() ?? [])];
  }
}

const text = (m: ChatMessage) => ('card' in m ? cardText(m.card.request, m.card.scope, m.card.quorum, m.card.outcome) : m.kind);

/** A platform whose messages are what it was last told to show; a post or an update can be held or made to fail. */
class Board implements ChatPlatform {
  readonly name = 'board';
  readonly auditFeed = { intervalMs: 0 };
  readonly shown = new Map<string, string>();
  readonly posts: Array<{ to: Destination; kind: ChatMessage['kind'] }> = [];
  updates = 0;
  /** Each post is answered by the next entry: a code to fail with (permanent unless it starts with `busy`), or nothing. */
  failures: Array<string | undefined> = [];
  private held: Array<{ started: () => void; release: Promise<void> }> = [];

  /** Holds the next update until the returned function is called; `started` resolves once it was asked for. */
  holdNextUpdate(): { started: Promise<void>; release: () => void } {
    let release!: () => void;
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    this.held.push({ started, release: new Promise<void>((r) => (release = r)) });
    return { started: startedP, release };
  }

  health = () => 'ok';
  recipient = async (p: string) => `dm:${p}`;
  auditLine = (e: AuditEvent) => e.action;
  postText = async () => {};
  failure = (err: unknown) => ({ code: String((err as Error).message), permanent: !String((err as Error).message).startsWith('busy') });

  async post(to: Destination, m: ChatMessage): Promise<string> {
    const fail = this.failures.shift();
    if (fail) throw new Error(fail);
    this.posts.push({ to, kind: m.kind });
    const ref = `msg${this.posts.length}`;
    this.shown.set(ref, text(m));
    return ref;
  }

  async update(ref: string, m: ChatMessage): Promise<void> {
    const hold = this.held.shift();
    if (hold) {
      hold.started();
      await hold.release;
    }
    this.updates++;
    this.shown.set(ref, text(m));
  }
}

const notice = (kind: Notification['kind'], request: AccessRequest, more: Partial<Notification> = {}): Notification => ({ kind, request, actor: 'bob@contoso.com', ...more });
const toChannel = { route: { matched: 'default', platforms: { board: { channel: '#approvals', dm: false } } } };
const log = { warn: () => {}, error: () => {} };

async function posted(board: Board, stored: { current: AccessRequest }, refs = new MemoryRefs()) {
  const n = new ChatNotifier({ platforms: [board], refs, log, retryMs: 0 });
  n.bind(context(stored));
  await n.notify(notice('approval_needed', BASE, toChannel));
  return { n, refs };
}

describe('card updates', () => {
  it('a notification that arrives late shows the stored state, not the older one it carries', async () => {
    const board = new Board();
    const stored = { current: BASE };
    const { n } = await posted(board, stored);
    stored.current = active;
    await n.notify(notice('activated', active));
    await n.notify(notice('approved', approved));
    expect([...board.shown.values()]).toEqual([cardText(active, 'request', 1)]);
  });

  it('two replicas: an update of an older state that lands last is followed by the newer state again', async () => {
    const board = new Board();
    const stored = { current: BASE };
    const { refs } = await posted(board, stored);
    const [a, b] = [new ChatNotifier({ platforms: [board], refs, log }), new ChatNotifier({ platforms: [board], refs, log })];
    a.bind(context(stored));
    b.bind(context(stored));

    stored.current = approved;
    const slow = board.holdNextUpdate();
    const first = a.notify(notice('approved', approved));
    await slow.started; // replica A is showing "approved" …
    stored.current = active;
    await b.notify(notice('activated', active)); // … while B shows "active" and is done
    expect(board.shown.get('msg1')).toBe(cardText(active, 'request', 1));
    slow.release(); // A's older update lands after B's
    await first;
    expect(board.shown.get('msg1')).toBe(cardText(active, 'request', 1));
    expect(board.updates).toBe(3);
  });

  it('an extension card keeps its outcome when a progress update of the extension arrives after the decision', async () => {
    const board = new Board();
    const asking = { ...active, pendingExtension: { addMs: 1_800_000, by: BASE.requester, at: BASE.createdAt + 3, decisions: [] }, version: 4 };
    const extended = { ...active, expiresAt: active.expiresAt + 1_800_000, version: 5 };
    const stored: { current: AccessRequest } = { current: asking };
    const n = new ChatNotifier({ platforms: [board], refs: new MemoryRefs(), log });
    n.bind(context(stored));
    await n.notify(notice('extension_needed', asking, toChannel));
    stored.current = extended;
    await n.notify(notice('extended', extended));
    await n.notify(notice('approval_progress', asking));
    expect([...board.shown.values()]).toEqual([`Extension of ${BASE.id} on vm1: approved`]);
  });
});

describe('cards a platform does not show', () => {
  it('a refused card is replaced by the stand-in where it was sent, audited, and later updated into the card', async () => {
    const board = new Board();
    board.failures = ['invalid_card'];
    const stored = { current: BASE };
    const audited: Array<AuditEvent['details']> = [];
    const n = new ChatNotifier({ platforms: [board], refs: new MemoryRefs(), log, retryMs: 0 });
    n.bind(context(stored, audited));
    await n.notify(notice('approval_needed', BASE, toChannel));
    expect(board.posts).toEqual([{ to: { kind: 'channel', id: '#approvals' }, kind: 'card_fallback' }]);
    expect(audited).toEqual([{ platform: 'board', card: 'request', destination: '#approvals', error: 'invalid_card', delivered: 'text' }]);
    stored.current = active;
    await n.notify(notice('activated', active));
    expect(board.shown.get('msg1')).toBe(cardText(active, 'request', 1));
  });

  it('a transient failure is tried once more and the card goes out, with nothing audited', async () => {
    const board = new Board();
    board.failures = ['busy'];
    const audited: Array<AuditEvent['details']> = [];
    const n = new ChatNotifier({ platforms: [board], refs: new MemoryRefs(), log, retryMs: 0 });
    n.bind(context({ current: BASE }, audited));
    await n.notify(notice('approval_needed', BASE, toChannel));
    expect(board.posts.map((p) => p.kind)).toEqual(['approval']);
    expect(audited).toEqual([]);
  });

  it('when the channel takes nothing, the approvers get the stand-in by DM and the audit names them', async () => {
    const board = new Board();
    board.failures = ['channel_gone', 'channel_gone'];
    const audited: Array<AuditEvent['details']> = [];
    const n = new ChatNotifier({ platforms: [board], refs: new MemoryRefs(), log, retryMs: 0 });
    n.bind(context({ current: BASE }, audited));
    await n.notify(notice('approval_needed', BASE, { ...toChannel, approvers: [p('bob@contoso.com'), p('carol@contoso.com')] }));
    expect(board.posts.map((p) => `${p.kind} to ${p.to.id}`)).toEqual(['card_fallback to dm:bob@contoso.com', 'card_fallback to dm:carol@contoso.com']);
    expect(audited).toEqual([{ platform: 'board', card: 'request', destination: '#approvals', error: 'channel_gone', delivered: 'approver_dms', approvers: 'bob@contoso.com carol@contoso.com' }]);
  });

  it('a platform the route does not name gets nothing', async () => {
    const board = new Board();
    const n = new ChatNotifier({ platforms: [board], refs: new MemoryRefs(), log });
    n.bind(context({ current: BASE }));
    await n.notify(notice('approval_needed', BASE, { route: { matched: 'ops', platforms: { other: { dm: true } } }, approvers: [p('bob@contoso.com')] }));
    expect(board.posts).toEqual([]);
  });
});
