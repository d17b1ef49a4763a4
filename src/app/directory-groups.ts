// The membership of directory-backed policy groups, cached with a TTL and refreshed in the
// background (bootstrap calls `refresh` every third of the TTL). Fail closed: a read that fails
// keeps the last good membership only until it is one TTL old; after that, and before the first
// good read, the source has no known members and every right through it is suspended. A failed
// read never adds anyone.
import { directorySources, sourceKey, type DirectoryMember, type SourceMembership } from '../core/directory.js';
import type { GroupSource, PolicyBook } from '../core/policy.js';
import type { Clock, GroupDirectory } from './ports.js';

interface Known {
  members: DirectoryMember[];
  readAt: number;
}

export class DirectoryGroups {
  private known = new Map<string, Known>();
  private failures = new Map<string, string>();
  /** Bumped on every change of what is known (the service re-merges its book then). */
  version = 0;

  constructor(
    private readonly deps: {
      directories: GroupDirectory[];
      ttlMs: number;
      clock: Clock;
      log?: (msg: string, err?: unknown) => void;
    },
  ) {}

  get ttlMs(): number {
    return this.deps.ttlMs;
  }

  private directoryFor(kind: string): GroupDirectory | undefined {
    return this.deps.directories.find((d) => d.kind === kind);
  }

  /** How messages name a source: as its directory says, else by the policy file's key. */
  private label(s: GroupSource): string {
    return this.directoryFor(s.kind)?.label(s.id) ?? `${s.kind} group ${s.id}`;
  }

  /** Reads every source the book names (concurrently); each failure is recorded, not thrown. */
  async refresh(book: PolicyBook): Promise<void> {
    await Promise.all(
      directorySources(book).map(async (s) => {
        const key = sourceKey(s);
        const dir = this.directoryFor(s.kind);
        try {
          if (!dir) throw new Error(`no directory for "${s.kind}" groups is configured on this server`);
          const members = await dir.members(s.id);
          this.known.set(key, { members, readAt: this.deps.clock.now() });
          this.failures.delete(key);
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          if (this.failures.get(key) !== why) this.deps.log?.(`directory: could not read ${this.label(s)}: ${why}`, err);
          this.failures.set(key, why);
        }
        this.version++;
      }),
    );
  }

  /** What is known of a source at `now`: the last good read while it is younger than the TTL. */
  membership(s: GroupSource, now: number): SourceMembership {
    const key = sourceKey(s);
    const k = this.known.get(key);
    const failure = this.failures.get(key);
    const pinPlatform = this.directoryFor(s.kind)?.pinPlatform;
    if (k && now < k.readAt + this.deps.ttlMs) return { members: k.members, ...(pinPlatform ? { pinPlatform } : {}) };
    const label = this.label(s);
    if (k) return { problem: `${label}: the last good read is older than ${Math.round(this.deps.ttlMs / 1000)}s${failure ? `; the directory said: ${failure}` : ''}` };
    return { problem: `${label}: ${failure ? `could not be read: ${failure}` : 'not read yet'}` };
  }

  /** When the first membership known at `now` goes stale (Infinity when none will). */
  validUntil(now: number): number {
    let until = Infinity;
    for (const k of this.known.values()) {
      const end = k.readAt + this.deps.ttlMs;
      if (end > now && end < until) until = end;
    }
    return until;
  }

  /** For /readyz: what is wrong with the book's directory groups now, or undefined. */
  problem(book: PolicyBook, now: number): string | undefined {
    const out: string[] = [];
    for (const s of directorySources(book)) {
      const m = this.membership(s, now);
      const failure = this.failures.get(sourceKey(s));
      if ('problem' in m) out.push(`unresolved: ${m.problem}; rights through it are suspended`);
      else if (failure) out.push(`${this.label(s)}: last refresh failed (${failure}); keeping the membership read ${Math.round((now - this.known.get(sourceKey(s))!.readAt) / 1000)}s ago until it is ${Math.round(this.deps.ttlMs / 1000)}s old`);
    }
    return out.length ? out.join('; ') : undefined;
  }
}
