// Directory-backed groups, the pure parts: the policy file's group forms, the merge of a
// membership into the book (pins respected, nothing added on error), and the TTL cache.
import { describe, expect, it } from 'vitest';
import { DirectoryGroups } from '../../src/app/directory-groups.js';
import type { GroupDirectory } from '../../src/app/ports.js';
import { parsePolicyText } from '../../src/config/policy-file.js';
import { withDirectoryGroups, type DirectoryMember } from '../../src/core/directory.js';
import { can, unresolvedGroupsBehind } from '../../src/core/rbac.js';
import { p } from '../fixtures/ids.js';

const GUID = '0b6f1a52-3c1e-4d7e-9a55-2f3c4d5e6f70';
const VM = '/subscriptions/s/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm1';
const yaml = (groups: string) => `
principals:
  alice@contoso.com: { teams: 11111111-1111-1111-1111-111111111111 }
  nomail@contoso.com: { slack: U0NOMAIL }
groups:
${groups}
roles:
  - { principal: group:oncall, role: JIT Approver, scope: /subscriptions/s }
`;

describe('policy file: groups', () => {
  it('takes a literal list, an Entra ID group, a Slack user group, or both beside literal members', () => {
    const book = parsePolicyText(yaml(`  oncall: { members: [Dave@Contoso.com], entra: ${GUID.toUpperCase()}, slack: S0ONCALL }\n  ops: [erin@contoso.com]`));
    expect(book.groups).toEqual({ oncall: ['dave@contoso.com'], ops: ['erin@contoso.com'] });
    expect(book.directory).toEqual({ oncall: [{ kind: 'entra', id: GUID }, { kind: 'slack', id: 'S0ONCALL' }] });
  });

  it('names the bad key', () => {
    expect(() => parsePolicyText(yaml('  oncall: { entra: not-a-guid }'))).toThrow(/groups\.oncall\.entra: must be the Entra ID group's object id/);
    expect(() => parsePolicyText(yaml('  oncall: { slack: "#oncall" }'))).toThrow(/groups\.oncall\.slack: must be a Slack user group id/);
    expect(() => parsePolicyText(yaml('  oncall: {}'))).toThrow(/groups\.oncall: needs members, entra/);
    expect(() => parsePolicyText(yaml('  oncall: [bob]'))).toThrow(/groups\.oncall\[0\]: must be an email/);
    expect(() => parsePolicyText(yaml('  oncall: { entra: x, ldap: y }'))).toThrow(/groups\.oncall/);
  });
});

describe('withDirectoryGroups', () => {
  const book = parsePolicyText(yaml(`  oncall: { members: [dave@contoso.com], entra: ${GUID} }`));
  const members = (m: DirectoryMember[]) => () => ({ members: m, pinPlatform: 'teams' });

  it('adds members by UPN / mail and by a pin to their account; a pin to another account wins over the email', () => {
    const merged = withDirectoryGroups(
      book,
      members([
        { id: 'id-bob', names: ['Bob@Contoso.com', 'bob.b@contoso.com'] },
        { id: 'id-other', names: ['alice@contoso.com'] }, // alice is pinned to 1111…
        { id: '11111111-1111-1111-1111-111111111111', names: ['a.smith@contoso.com'] },
      ]),
    );
    expect(merged.groups.oncall?.sort()).toEqual(['a.smith@contoso.com', 'alice@contoso.com', 'bob.b@contoso.com', 'bob@contoso.com', 'dave@contoso.com']);
    expect(merged.unresolvedGroups).toEqual({});
    expect(can(merged, p('bob@contoso.com'), 'approve', VM)).toBe(true);
  });

  it('a pinned account elsewhere alone does not make its email a member', () => {
    const merged = withDirectoryGroups(book, members([{ id: 'id-other', names: ['alice@contoso.com'] }]));
    expect(merged.groups.oncall).toEqual(['dave@contoso.com']);
    expect(can(merged, p('alice@contoso.com'), 'approve', VM)).toBe(false);
  });

  it('an unknown membership adds nobody (the literal members keep theirs) and names the group', () => {
    const merged = withDirectoryGroups(book, () => ({ problem: `Entra ID group ${GUID}: could not be read: HTTP 503` }));
    expect(merged.groups.oncall).toEqual(['dave@contoso.com']);
    expect(merged.unresolvedGroups).toEqual({ oncall: `Entra ID group ${GUID}: could not be read: HTTP 503` });
    expect(can(merged, p('bob@contoso.com'), 'approve', VM)).toBe(false);
    expect(unresolvedGroupsBehind(merged, 'approve', VM)).toEqual(['oncall']);
    expect(unresolvedGroupsBehind(merged, 'request', VM)).toEqual([]);
  });
});

describe('DirectoryGroups (TTL cache)', () => {
  const book = parsePolicyText(yaml(`  oncall: { entra: ${GUID} }`));
  const source = { kind: 'entra' as const, id: GUID };
  let now = 1_000_000;
  let answer: DirectoryMember[] | Error = [{ id: 'id-bob', names: ['bob@contoso.com'] }];
  const graph: GroupDirectory = {
    kind: 'entra',
    pinPlatform: 'teams',
    label: (id) => `Entra ID group ${id}`,
    members: async () => {
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  const dirs = new DirectoryGroups({ directories: [graph], ttlMs: 60_000, clock: { now: () => now } });

  it('is unknown before the first read, known after it, and keeps the last good read only until one TTL old', async () => {
    expect(dirs.membership(source, now)).toEqual({ problem: `Entra ID group ${GUID}: not read yet` });
    await dirs.refresh(book);
    expect(dirs.membership(source, now)).toEqual({ members: [{ id: 'id-bob', names: ['bob@contoso.com'] }], pinPlatform: 'teams' });
    expect(dirs.problem(book, now)).toBeUndefined();
    expect(dirs.validUntil(now)).toBe(now + 60_000);

    answer = new Error('HTTP 503');
    now += 30_000;
    await dirs.refresh(book);
    expect(dirs.membership(source, now)).toEqual({ members: [{ id: 'id-bob', names: ['bob@contoso.com'] }], pinPlatform: 'teams' });
    expect(dirs.problem(book, now)).toMatch(/last refresh failed \(HTTP 503\); keeping the membership read 30s ago until it is 60s old/);

    now += 30_000;
    expect(dirs.membership(source, now)).toEqual({ problem: `Entra ID group ${GUID}: the last good read is older than 60s; the directory said: HTTP 503` });
    expect(dirs.problem(book, now)).toBe(`unresolved: Entra ID group ${GUID}: the last good read is older than 60s; the directory said: HTTP 503; rights through it are suspended`);

    answer = [];
    await dirs.refresh(book);
    expect(dirs.membership(source, now)).toEqual({ members: [], pinPlatform: 'teams' });
    expect(dirs.problem(book, now)).toBeUndefined();
  });

  it('a source of a kind no directory serves is unresolved, with why', async () => {
    const slackBook = parsePolicyText(yaml('  oncall: { slack: S0ONCALL }'));
    await dirs.refresh(slackBook);
    expect(dirs.membership({ kind: 'slack', id: 'S0ONCALL' }, now)).toEqual({ problem: 'slack group S0ONCALL: could not be read: no directory for "slack" groups is configured on this server' });
  });
});
