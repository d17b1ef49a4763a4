import { describe, expect, it } from 'vitest';
import { PinnedIdentityError, SlackDirectory, UnresolvedUserError, type SlackUsersApi } from '../../src/adapters/slack/directory.js';
import { testBook } from '../fixtures/book.js';
import { p } from '../fixtures/ids.js';

function api(users: Record<string, { email?: string; tz?: string; deleted?: boolean; is_bot?: boolean }>) {
  const calls: string[] = [];
  const a: SlackUsersApi = {
    info: async (id) => {
      calls.push(`info ${id}`);
      const u = users[id];
      return u ? { id, ...(u.deleted ? { deleted: true } : {}), ...(u.is_bot ? { is_bot: true } : {}), ...(u.tz ? { tz: u.tz } : {}), ...(u.email ? { profile: { email: u.email } } : {}) } : undefined;
    },
    lookupByEmail: async (email) => {
      calls.push(`lookup ${email}`);
      const hit = Object.entries(users).find(([, u]) => u.email === email);
      return hit ? { id: hit[0] } : undefined;
    },
  };
  return { a, calls };
}

describe('Slack directory', () => {
  const book = testBook();

  it('prefers the policy file mapping, else the profile email (lower-cased), with the profile time zone', async () => {
    const { a } = api({ U024ALICE: { email: 'someone-else@contoso.com', tz: 'Europe/Paris' }, U9: { email: 'Carol@Contoso.com' } });
    const d = new SlackDirectory(a, () => book, 60_000);
    expect(await d.resolve('U024ALICE')).toEqual({ principal: 'alice@contoso.com', timeZone: 'Europe/Paris' });
    expect((await d.resolve('U9')).principal).toBe('carol@contoso.com');
  });

  it('caches lookups for the TTL, then asks again', async () => {
    let now = 0;
    const { a, calls } = api({ U9: { email: 'carol@contoso.com' } });
    const d = new SlackDirectory(a, () => book, 1000, () => now);
    await d.resolve('U9');
    await d.resolve('U9');
    expect(calls).toEqual(['info U9']);
    now = 1001;
    await d.resolve('U9');
    expect(calls).toEqual(['info U9', 'info U9']);
  });

  it('refuses deactivated accounts, bots and profiles without email, saying how to fix it', async () => {
    const { a } = api({ U1: { email: 'x@contoso.com', deleted: true }, U2: { email: 'b@contoso.com', is_bot: true }, U3: {} });
    const d = new SlackDirectory(a, () => book, 1000);
    await expect(d.resolve('U1')).rejects.toThrow(/deactivated/);
    await expect(d.resolve('U2')).rejects.toThrow(/bots/);
    await expect(d.resolve('U3')).rejects.toBeInstanceOf(UnresolvedUserError);
    await expect(d.resolve('U3')).rejects.toThrow(/slack: U3/);
  });

  it('an explicit mapping still works when Slack does not answer', async () => {
    const d = new SlackDirectory({ info: async () => { throw new Error('ECONNRESET'); }, lookupByEmail: async () => undefined }, () => book, 1000);
    expect((await d.resolve('U024BOB')).principal).toBe('bob@contoso.com');
    await expect(d.resolve('U777')).rejects.toThrow(/ECONNRESET/);
  });

  it('finds whom to DM: mapping first, else lookupByEmail, cached; unknown is null', async () => {
    const { a, calls } = api({ U9: { email: 'carol@contoso.com' } });
    const d = new SlackDirectory(a, () => book, 60_000);
    expect(await d.userOf(p('alice@contoso.com'))).toBe('U024ALICE');
    expect(await d.userOf(p('carol@contoso.com'))).toBe('U9');
    expect(await d.userOf(p('carol@contoso.com'))).toBe('U9');
    expect(await d.userOf(p('nobody@contoso.com'))).toBeNull();
    expect(calls).toEqual(['lookup carol@contoso.com', 'lookup nobody@contoso.com']);
  });

  it('an explicit mapping pins the principal: another Slack user with the same profile email is refused, cached or not', async () => {
    let now = 0;
    const { a } = api({ U024ALICE: { email: 'alice@contoso.com' }, U0EVIL: { email: 'ALICE@contoso.com' } });
    const d = new SlackDirectory(a, () => book, 1000, () => now);
    expect((await d.resolve('U024ALICE')).principal).toBe('alice@contoso.com');
    await expect(d.resolve('U0EVIL')).rejects.toBeInstanceOf(PinnedIdentityError);
    await expect(d.resolve('U0EVIL')).rejects.toThrow(/alice@contoso\.com is mapped to another Slack user/);
    now = 5000;
    await expect(d.resolve('U0EVIL')).rejects.toThrow(/cannot act as alice@contoso\.com/);
  });
});
