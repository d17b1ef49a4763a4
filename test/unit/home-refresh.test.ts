// The notifier keeps home views current: every change re-shows the home of each principal it
// concerns (the requester, whoever may decide), on each platform that has home views; refreshes
// of one principal never overlap, and a burst of changes ends in one more refresh, not one each.
import { describe, expect, it } from 'vitest';
import { ChatNotifier, type ChatContext } from '../../src/app/chat/notifier.js';
import type { ChatPlatform, MessageRefs } from '../../src/app/chat/platform.js';
import type { AccessRequest } from '../../src/core/types.js';
import { testBook } from '../fixtures/book.js';
import { pendingRequest } from '../fixtures/requests.js';
import { ALICE, BOB, CAROL, p } from '../fixtures/ids.js';
import type { PrincipalId } from '../../src/core/ids.js';

const REQ: AccessRequest = pendingRequest();

const ctx: ChatContext = {
  policyBook: () => testBook(),
  get: async () => REQ,
  approversFor: async () => [BOB, CAROL],
  checkDecide: async () => {},
  auditDelivery: async () => {},
};
const refs: MessageRefs = { add: async () => {}, list: async () => [] };
const log = { warn: () => {}, error: () => {} };

const EVERYONE = [ALICE, BOB, CAROL, p('erin@contoso.com')];

/** A platform; with `home`, home views kept by `viewers` (everyone by default). */
function platform(name: string, home?: (who: PrincipalId) => Promise<void>, viewers: PrincipalId[] = EVERYONE): ChatPlatform {
  return {
    name,
    auditFeed: { intervalMs: 0 },
    health: () => 'ok',
    recipient: async (p) => `dm:${p}`,
    post: async () => 'ref',
    update: async () => {},
    auditLine: () => '',
    postText: async () => {},
    failure: () => ({ code: 'x', permanent: true }),
    ...(home ? { homes: { viewers: async () => new Set(viewers), refresh: home } } : {}),
  };
}

describe('home refresh', () => {
  it('refreshes the requester and the deciders on each platform with home views, not others', async () => {
    const seen: string[] = [];
    const n = new ChatNotifier({ platforms: [platform('a', async (p) => void seen.push(`a:${p}`)), platform('plain')], refs, log });
    n.bind(ctx);
    await n.notify({ kind: 'approved', request: { ...REQ, status: 'approved' }, actor: 'bob@contoso.com' });
    await n.homesSettled();
    expect(seen.sort()).toEqual(['a:alice@contoso.com', 'a:bob@contoso.com', 'a:carol@contoso.com']);
    // Escalation names added approvers: they are refreshed too.
    seen.length = 0;
    await n.notify({ kind: 'escalated', request: REQ, actor: 'system', approvers: [p('erin@contoso.com')] });
    await n.homesSettled();
    expect(seen).toContain('a:erin@contoso.com');
  });

  it('refreshes only those who keep a home; with no viewer anywhere, works out nothing and calls nothing', async () => {
    const seen: string[] = [];
    let asked = 0;
    const counting: ChatContext = { ...ctx, approversFor: async (r) => (asked++, ctx.approversFor(r)) };
    const n = new ChatNotifier({ platforms: [platform('a', async (p) => void seen.push(`a:${p}`), [CAROL, p('zoe@contoso.com')]), platform('b', async (p) => void seen.push(`b:${p}`), [])], refs, log });
    n.bind(counting);
    await n.notify({ kind: 'approved', request: { ...REQ, status: 'approved' }, actor: 'bob@contoso.com' });
    await n.homesSettled();
    // Zoe keeps a home but the change is not hers; nobody keeps one on b.
    expect(seen).toEqual(['a:carol@contoso.com']);
    expect(asked).toBe(1);

    seen.length = 0;
    asked = 0;
    const quiet = new ChatNotifier({ platforms: [platform('a', async (p) => void seen.push(`a:${p}`), []), platform('plain')], refs, log });
    quiet.bind(counting);
    await quiet.notify({ kind: 'approved', request: { ...REQ, status: 'approved' }, actor: 'bob@contoso.com' });
    await quiet.homesSettled();
    expect(seen).toEqual([]);
    expect(asked).toBe(0);
  });

  it('one refresh at a time per principal; changes meanwhile end in one more; a failing platform is only logged', async () => {
    let running = 0;
    let most = 0;
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const firstStarted = new Promise<void>((r) => (started = r));
    const warned: string[] = [];
    const n = new ChatNotifier({
      platforms: [
        platform('a', async () => {
          running++;
          most = Math.max(most, running);
          calls++;
          started();
          await gate;
          running--;
        }),
        platform('broken', async () => {
          throw new Error('down');
        }),
      ],
      refs,
      log: { warn: (m) => void warned.push(m), error: () => {} },
    });
    n.bind({ ...ctx, approversFor: async () => [] });
    const first = n.notify({ kind: 'approval_progress', request: REQ, actor: 'bob@contoso.com' });
    await firstStarted;
    const more = [1, 2, 3].map(() => n.notify({ kind: 'approval_progress', request: REQ, actor: 'bob@contoso.com' }));
    // Let the three notifications reach the refresh (all in memory: a few turns of the event loop).
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    release();
    await Promise.all([first, ...more]);
    await n.homesSettled();
    expect(most).toBe(1);
    expect(calls).toBe(2);
    expect(warned.filter((w) => w.startsWith('broken: home view not refreshed')).length).toBeGreaterThan(0);
  });
});
