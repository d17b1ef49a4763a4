// The policy book every decision reads: the policy file's, merged with the network side's own
// targets (Defender for Cloud's JIT policies) and with the directory groups' members.
import { withDirectoryGroups } from '../core/directory.js';
import { withNetworkPolicies, type NetworkPolicies, type PolicyBook } from '../core/policy.js';
import type { DirectoryGroups } from './directory-groups.js';
import type { Clock, NetworkGate } from './ports.js';

export class PolicyBooks {
  /** The policy file's book merged with the network side's own targets. */
  private netBook: PolicyBook;
  /** `netBook` with the directory groups' members merged in, until the first membership goes stale. */
  private merged: { base: PolicyBook; version: number; until: number; book: PolicyBook } | undefined;
  /** The policy file's book as loaded. */
  private fileBook: PolicyBook;
  /** The network side's targets and ports as last read (kept when a later read fails). */
  private network: NetworkPolicies | undefined;
  private networkProblem: string | undefined;
  private networkNotes = '';

  constructor(
    book: PolicyBook,
    private readonly deps: { gate: NetworkGate; clock: Clock; directory?: DirectoryGroups },
    private readonly log: (msg: string, err?: unknown) => void,
  ) {
    this.netBook = book;
    this.fileBook = book;
  }

  setFileBook(book: PolicyBook): void {
    this.fileBook = book;
    this.netBook = withNetworkPolicies(book, this.network).book;
  }

  /**
   * The book every decision reads: the file's and the network's, with directory groups' members as
   * last read (a membership older than the TTL counts as unknown: its members hold nothing).
   */
  current(): PolicyBook {
    const dir = this.deps.directory;
    if (!dir || !this.netBook.directory) return this.netBook;
    const now = this.deps.clock.now();
    const m = this.merged;
    if (m && m.base === this.netBook && m.version === dir.version && now < m.until) return m.book;
    const book = withDirectoryGroups(this.netBook, (s) => dir.membership(s, now));
    this.merged = { base: this.netBook, version: dir.version, until: dir.validUntil(now), book };
    return book;
  }

  /** Reads the directory groups' membership again (bootstrap: at start and every third of the TTL). */
  async refreshDirectoryGroups(): Promise<void> {
    if (this.netBook.directory) await this.deps.directory?.refresh(this.netBook);
  }

  /** For /readyz: directory groups whose membership is unknown or whose last refresh failed. */
  directoryProblem(): string | undefined {
    if (!this.netBook.directory) return undefined;
    if (!this.deps.directory) return 'directory groups are configured but no directory is wired';
    return this.deps.directory.problem(this.netBook, this.deps.clock.now());
  }

  /**
   * Reads the network side's own targets and ports (Defender for Cloud's JIT policies) and merges
   * them over the policy file's. A failed read keeps the last good one (a target does not vanish
   * because Azure was slow) and is reported by `networkPoliciesProblem`. No-op for gates without
   * policies of their own.
   */
  async refreshNetworkPolicies(): Promise<void> {
    if (!this.deps.gate.policies) return;
    try {
      const net = await this.deps.gate.policies();
      const { book, notes } = withNetworkPolicies(this.fileBook, net);
      this.network = net;
      this.netBook = book;
      this.networkProblem = undefined;
      const said = notes.join('; ');
      if (said && said !== this.networkNotes) this.log(`${net.source} policies: ${said}`);
      this.networkNotes = said;
    } catch (err) {
      this.networkProblem = `could not read the network's policies: ${err instanceof Error ? err.message : String(err)}`;
      this.log(this.networkProblem, err);
    }
  }

  /** Why the last read of the network side's policies failed; undefined when it did not. */
  networkPoliciesProblem(): string | undefined {
    return this.networkProblem;
  }
}
