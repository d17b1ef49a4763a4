// The chat grammar's parsed form, the same for every platform.
import type { PortSpec } from './types.js';

export interface AccessCommand {
  kind: 'access';
  /** As typed: `rdp`, `ssh`, `winrm`, or `port`. */
  verb: 'rdp' | 'ssh' | 'winrm' | 'port';
  ports: PortSpec[];
  target: string;
  durationMs: number;
  /** As typed after `from` (validated later against policy); undefined when omitted. */
  source?: string;
  justification?: string;
  /** `at 14:00` (local time, next occurrence) or `at 2026-11-25T14:00` / with an offset: when to open. */
  startAt?: string;
}

export type Command =
  | AccessCommand
  | { kind: 'list'; scope: 'mine' | 'all' | 'pending' | 'active' }
  | { kind: 'status'; requestId: string }
  | { kind: 'revoke'; requestId: string }
  | { kind: 'extend'; requestId: string; durationMs: number }
  | { kind: 'approve'; requestId: string }
  | { kind: 'deny'; requestId: string; reason?: string }
  | { kind: 'policy_enable'; target: string; ports?: PortSpec[] }
  | { kind: 'policy_disable'; target: string }
  | { kind: 'policy_show'; target: string }
  | { kind: 'vms' }
  | { kind: 'audit'; target?: string; sinceMs: number }
  | { kind: 'help' };
