// The AzureGate's options (see gate.ts).
import type { Redis } from 'ioredis';
import type { Clock } from '../../app/ports.js';
import type { Target } from '../../core/types.js';
import type { TokenCredential } from '@azure/identity';

export interface AzureGateOptions {
  credential: TokenCredential;
  /** ARM endpoint (sovereign clouds, the emulator); default https://management.azure.com. */
  endpoint?: string;
  /** Extra CA certificate(s) to trust for the ARM endpoint (a TLS-inspecting proxy, the emulator). */
  caCert?: string;
  /** Priorities the bot may use for Allow rules (default 100–199, as Azure JIT). */
  priorityRange?: [number, number];
  /** Priorities for the bot's Deny rules ("enable JIT"; default 4000–4096, below everything else). */
  denyPriorityRange?: [number, number];
  /**
   * How NSG rules are written: `auto` (default) one whole-NSG PUT per batch of queued changes where
   * ARM allows it, child-rule operations on an NSG where it refuses (see writeNsgWhole); `rules`:
   * child-rule operations only.
   */
  nsgWrites?: 'auto' | 'rules';
  /** How an idle write queue gathers a burst before its first write (default 40 ms quiet, 250 ms at most). */
  gather?: { quietMs: number; maxMs: number };
  /** How long an NSG write keeps retrying 409 / 429 / 5xx / canceled operations before the grant fails. */
  writeDeadlineMs?: number;
  /** The same for firewalls and firewall policies, whose updates take minutes (default 30 min). */
  firewallDeadlineMs?: number;
  /** LRO polling interval. */
  pollIntervalMs?: number;
  /**
   * How long one ARM call may go unanswered before it is abandoned and retried (default 20 s). A
   * timed-out write may still have been applied: the retry re-reads, and every change is idempotent.
   */
  requestTimeoutMs?: number;
  /** How long a read retries 429 / 5xx (default 30 s). */
  readDeadlineMs?: number;
  /** Reads in flight at once (default 8). */
  readConcurrency?: number;
  /**
   * How often the reconciler lists every NSG, firewall and firewall policy of the managed scopes
   * (default 5 min); between those sweeps it reads the live targets' resources and those it knows
   * hold the bot's rules. 0: every sweep.
   */
  scopeSweepIntervalMs?: number;
  /** Cross-replica lock per resource. */
  redis?: Redis;
  lockPrefix?: string;
  /** Subscriptions whose VMs the inventory lists and whose resource groups the reconciler sweeps. */
  subscriptions?: string[];
  /** The targets of the policy. */
  targets: () => Target[];
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** For tests: how to wait. */
  sleep?: (ms: number) => Promise<void>;
  /**
   * The app's clock (default: the system's): grant expiries, held closes, the discovery cache and
   * the scope sweep's interval are read against it. ARM calls' deadlines and timings are real time.
   */
  clock?: Clock;
}
