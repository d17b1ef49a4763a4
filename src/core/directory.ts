// Policy groups backed by a directory (an identity provider's groups, a chat platform's user groups). Pure: the app layer
// reads the directory and hands the last good membership of each source here; this merges it into
// the policy book's groups. Rights are never widened on error: a source without a membership known
// now contributes no member, and the group is listed as unresolved (for refusals and /readyz).
import { parsePrincipal } from './ids.js';
import { listedPrincipals, own, type GroupSource, type PolicyBook } from './policy.js';
import type { PrincipalId } from './types.js';

/** One member as the directory returns it. */
export interface DirectoryMember {
  /** The directory's own id of the person (an object id, a chat user id). */
  id: string;
  /** Email-like names the directory gives them (UPN, mail, profile email). */
  names: string[];
}

/**
 * The membership of one source: known (the members, and the chat platform whose user ids their
 * directory ids are, for `principals.<p>.<platform>` pins), or not known now (why, naming the source).
 */
export type SourceMembership = { members: DirectoryMember[]; pinPlatform?: string } | { problem: string };

export const sourceKey = (s: GroupSource): string => `${s.kind}:${s.id.toLowerCase()}`;


/** Every directory source the book names, once each. */
export function directorySources(book: PolicyBook): GroupSource[] {
  const seen = new Map<string, GroupSource>();
  for (const sources of Object.values(book.directory ?? {})) for (const s of sources) seen.set(sourceKey(s), s);
  return [...seen.values()];
}

/**
 * The principals a directory member stands for. A principal the policy file pins to another
 * account on the same platform (`principals.bob@x.teams: <other object id>`) is not one of them:
 * a directory account that merely carries bob's email must not lend bob its groups. A principal
 * pinned to this very account is one of them, whatever its email.
 */
export function principalsOfMember(book: PolicyBook, platform: string | undefined, m: DirectoryMember): PrincipalId[] {
  const out = new Set<PrincipalId>();
  const id = m.id.toLowerCase();
  for (const raw of m.names) {
    const name = parsePrincipal(raw);
    if (name === undefined) continue;
    const pin = platform === undefined ? undefined : own(book.principals, name)?.[platform];
    if (pin !== undefined && pin.toLowerCase() !== id) continue;
    out.add(name);
  }
  if (platform === undefined) return [...out];
  for (const [principal, info] of listedPrincipals(book)) {
    const pin = own(info, platform);
    if (pin !== undefined && pin.toLowerCase() === id) out.add(principal);
  }
  return [...out];
}

/**
 * The book with each directory group's members added from its sources' memberships. A source
 * whose membership is not known adds nobody, and the group is named in `unresolvedGroups`.
 */
export function withDirectoryGroups(book: PolicyBook, membership: (s: GroupSource) => SourceMembership): PolicyBook {
  const directory = book.directory;
  if (!directory || Object.keys(directory).length === 0) return book;
  const groups: Record<string, PrincipalId[]> = { ...book.groups };
  const unresolved: Record<string, string> = {};
  for (const [group, sources] of Object.entries(directory)) {
    const members = new Set<PrincipalId>(own(book.groups, group) ?? []);
    const problems: string[] = [];
    for (const s of sources) {
      const got = membership(s);
      if ('problem' in got) {
        problems.push(got.problem);
        continue;
      }
      for (const m of got.members) for (const p of principalsOfMember(book, got.pinPlatform, m)) members.add(p);
    }
    groups[group] = [...members];
    if (problems.length) unresolved[group] = problems.join('; ');
  }
  return { ...book, groups, unresolvedGroups: unresolved };
}
