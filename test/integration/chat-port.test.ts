// The chat-platform seam: a platform that exists only in this test (test/fakes/memo-chat.ts, the
// ChatPlatform port and nothing else) runs the whole approval flow through the shared notifier,
// against the real service, Redis, BullMQ and the simulated gate. The policy file names it like
// any platform: its people under principals, its channels under channels.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJit } from '../../src/bootstrap.js';
import { silentLogger } from '../../src/log.js';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { MemoChat } from '../fakes/memo-chat.js';
import { REDIS_URL, requestOf, startHarness, waitFor, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';

const POLICY = TEST_POLICY_YAML.replace('alice@contoso.com: { slack: U024ALICE }', 'alice@contoso.com: { slack: U024ALICE, memo: M-ALICE }')
  .replace('bob@contoso.com: { slack: U024BOB }', 'bob@contoso.com: { slack: U024BOB, memo: M-BOB }')
  .replace(
    'approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }',
    `approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }
    channels: { memo: { approvals: "#approvals", audit: "#audit" } }`,
  );

let memo: MemoChat;
let h: Harness;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jit-memo-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  memo = new MemoChat(() => h.app.service.policyBook());
  h = await startHarness({ JIT_POLICY_FILE: join(dir, 'policy.yaml') }, { chatPlatforms: [memo] });
});

afterAll(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a chat platform of its own, through the shared notifier', () => {
  it('request → card to the approvers → approve → card updated, requester told, audit channel fed → expiry told', async () => {
    // Alice asks on the memo platform (as its command handler would: her principal, its name as the origin).
    const reply = await h.app.service.execute(p('alice@contoso.com'), 'rdp vm1 4s from 203.0.113.7', { via: 'memo' });
    expect(reply.kind).toBe('pending_approval');
    const id = requestOf(reply).id;

    const card = await waitFor('approval card', async () => memo.posts.find((p) => p.kind === 'approval' && p.request === id));
    expect(card.to).toEqual({ kind: 'channel', id: '#approvals' });
    expect(card.text).toBe(`Access request ${id}: alice@contoso.com asks for 3389/tcp on vm1 for 4s; waiting for approval`);

    // Bob approves (as a click on that card would).
    await h.app.service.decide(p('bob@contoso.com'), id, 'approve');
    await waitFor('card shows the open grant', async () => memo.updates.find((u) => u.ref === card.ref && u.text.includes('is active until')));
    const open = await waitFor('requester told how to connect', async () => memo.posts.find((p) => p.kind === 'active' && p.request === id));
    expect(open.to).toEqual({ kind: 'dm', id: 'M-ALICE', principal: 'alice@contoso.com' });
    expect(open.text).toContain('mstsc /v:vm1.contoso.example:3389');

    // Expiry closes the port; the card and the requester say so.
    await waitFor('rule removed at expiry', async () => (await h.rules()).every((r) => r.requestId !== id), 15_000);
    const closed = await waitFor('requester told of the expiry', async () => memo.posts.find((p) => p.kind === 'notice' && p.request === id));
    expect(closed.to.id).toBe('M-ALICE');
    expect(closed.text).toBe('Your access to vm1 expired; the port is closed.');
    await waitFor('card shows the expiry', async () => memo.updates.find((u) => u.ref === card.ref && u.text.endsWith('has expired')));
    // Every card update went to the one card, and nothing was posted to anyone else.
    expect(new Set(memo.updates.filter((u) => u.request === id).map((u) => u.ref))).toEqual(new Set([card.ref]));
    expect(memo.posts.filter((p) => p.request === id).map((p) => `${p.kind} to ${p.to.id}`)).toEqual(['approval to #approvals', 'active to M-ALICE', 'notice to M-ALICE']);

    // The audit channel has every event of the request, in the audit log's order.
    const log = (await h.audit(id)).map((e) => e.action);
    expect(log).toContain('grant.expired');
    const posted = await waitFor('audit channel complete', async () => {
      const actions = (memo.channels.get('#audit') ?? []).filter((l) => l.includes(id)).map((l) => /\*([a-z_.]+)\*/.exec(l)?.[1]);
      return actions.length >= log.length ? actions : null;
    });
    expect(posted).toEqual(log);
  });

  it('its health is part of /readyz', async () => {
    const res = await fetch(`${h.app.url}/readyz`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as Record<string, string>).memo).toBe('ok');
  });

  it('a policy file naming a platform the server does not have stops start-up, naming the key', async () => {
    const bad = join(dir, 'typo.yaml');
    writeFileSync(bad, POLICY.replace('channels: { memo:', 'channels: { mem0:'));
    const env = { PORT: '0', HOST: '127.0.0.1', REDIS_URL, JIT_DATA_DIR: dir, JIT_POLICY_FILE: bad };
    await expect(startJit({ env, log: silentLogger, chatPlatforms: [memo] })).rejects.toThrow(
      'policies.sub.channels.mem0: there is no chat platform called "mem0" (this server has slack, teams, memo)',
    );
  });
});
