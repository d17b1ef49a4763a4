// Where the chat platforms' cards are remembered (RedisMessageRefs), on the real Redis: copies
// added at once are all kept, and members the adapters wrote before the shared notifier are
// still read (their cards keep being updated after an upgrade).
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisMessageRefs } from '../../src/adapters/redis/messages.js';
import { REDIS_URL, deleteKeys } from './harness.js';
import { p } from '../fixtures/ids.js';

const prefix = `test-refs-${Math.random().toString(36).slice(2, 8)}`;
const redis = new Redis(REDIS_URL);
const refs = new RedisMessageRefs(redis, prefix);

afterAll(async () => {
  await deleteKeys(prefix);
  redis.disconnect();
});

describe('card references', () => {
  it('copies added at once by several writers are all kept, each with its viewer, for 30 days', async () => {
    await Promise.all([
      refs.add('slack', 'request', 'r1', [{ ref: 'C0APPROVALS 1.1' }]),
      refs.add('slack', 'request', 'r1', [{ ref: 'D024BOB 2.2', viewer: p('bob@contoso.com') }]),
      refs.add('slack', 'extension', 'r1', [{ ref: 'C0APPROVALS 3.3' }]),
    ]);
    const got = await refs.list('slack', 'request', 'r1');
    expect(got.sort((a, b) => a.ref.localeCompare(b.ref))).toEqual([{ ref: 'C0APPROVALS 1.1' }, { ref: 'D024BOB 2.2', viewer: 'bob@contoso.com' }]);
    expect(await refs.list('slack', 'extension', 'r1')).toEqual([{ ref: 'C0APPROVALS 3.3' }]);
    expect(await refs.list('teams', 'request', 'r1')).toEqual([]);
    const ttl = await redis.ttl(`${prefix}:slack:cards:req:r1`);
    expect(ttl).toBeGreaterThan(29 * 86_400);
  });

  it('reads the members the adapters wrote before: a bare Slack reference, a Teams copy with its viewer', async () => {
    const teamsCopy = JSON.stringify({ ref: { conversation: { id: 'a:1' } }, activityId: 'act-1', viewer: 'bob@contoso.com' });
    await redis.sadd(`${prefix}:slack:cards:req:r2`, 'C0APPROVALS 1767000000.000100');
    await redis.sadd(`${prefix}:teams:cards:ext:r2`, teamsCopy);
    expect(await refs.list('slack', 'request', 'r2')).toEqual([{ ref: 'C0APPROVALS 1767000000.000100' }]);
    expect(await refs.list('teams', 'extension', 'r2')).toEqual([{ ref: teamsCopy, viewer: 'bob@contoso.com' }]);
  });
});
