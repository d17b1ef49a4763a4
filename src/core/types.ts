// The vocabulary of ../shared/DESIGN.md as types. Pure: no I/O, no SDK.

import type { PrincipalId, PrincipalRef, RequestId, TargetName } from './ids.js';

/** People by email / UPN, and refs to them: defined with their parse in ids.ts. */
export type { PrincipalId, PrincipalRef, TargetName } from './ids.js';

export type Protocol = 'tcp' | 'udp' | '*';

export interface PortSpec {
  port: number;
  protocol: Protocol;
}

export type Os = 'windows' | 'linux';

export interface Target {
  /** Short name people type in chat (`vm1`). */
  name: TargetName;
  /** ARM resource id of the VM. */
  id: string;
  os: Os;
  /** Host name or IP the connection line uses. */
  address?: string;
  /** Login name for the ready-made ssh line (linux). */
  user?: string;
  /** Keep the management ports closed by the bot's own Deny rules (written at start). */
  enforce?: boolean;
  /** Reached through an Azure Firewall: grants are DNAT rules there (plus NSG allows from its subnet). */
  firewall?: FirewallRoute;
}

/**
 * A VM as the network adapters address it: a Target, or one read from ARM (inventory, a network
 * provider's policies) whose name is the VM's ARM name, not (yet) a target name.
 */
export type NetworkTarget = Omit<Target, 'name'> & { name: string };

export interface FirewallRoute {
  /** Classic rules: the Azure Firewall's resource id (natRuleCollections). */
  firewallId?: string;
  /** Firewall Policy: the policy's resource id and the rule collection group jit-bot writes to. */
  policyId?: string;
  ruleCollectionGroup?: string;
  /** The firewall's public IP people connect to. */
  publicIp: string;
  /** Public ports jit-bot maps grants to. */
  portPool: [number, number];
  /** The AzureFirewallSubnet prefix: DNAT'd traffic reaches the VM from there. */
  subnetPrefix: string;
}

export interface PortRule extends PortSpec {
  /** Source prefixes a request may use: CIDRs / addresses, or `*` for Any. */
  allowedSourcePrefixes: string[];
  maxDurationMs: number;
  /**
   * A source must be one of `allowedSourcePrefixes` as written, not a range inside one: Defender
   * for Cloud's JIT compares an initiate's source with its policy's prefixes verbatim.
   */
  exactSources?: boolean;
}

export interface ApprovalRule {
  required: boolean;
  /** Principals and `group:` refs. Empty: whoever holds JIT Approver / JIT Admin covering the target. */
  approvers: PrincipalRef[];
  quorum: number;
  timeoutMs: number;
  selfApproval: boolean;
  /** Denials needed to end the request (default 1: any deny ends it). */
  denyQuorum: number;
  /** If nobody decides within `afterMs`, these approvers are asked too. */
  escalation?: { afterMs: number; approvers: PrincipalRef[] };
}

/** Where one chat platform posts a policy's approval requests and audit lines. */
export interface PlatformChannels {
  approvals?: string;
  audit?: string;
}

/** Channels per chat platform, keyed by the platform's name (the keys under `channels` in the policy file). */
export type ChannelRouting = Record<string, PlatformChannels>;

export type RequestStatus =
  | 'awaiting_source'
  | 'pending'
  | 'approved'
  | 'active'
  | 'denied'
  | 'timed_out'
  | 'cancelled'
  | 'expired'
  | 'revoked'
  | 'failed';

export const FINAL_STATUSES: readonly RequestStatus[] = [
  'denied',
  'timed_out',
  'cancelled',
  'expired',
  'revoked',
  'failed',
];

export interface Decision {
  by: PrincipalId;
  decision: 'approve' | 'deny';
  at: number;
  reason?: string;
}

/** A network rule written for a grant, as the gate reports it (NSG-like). */
export interface AppliedRule {
  /** Deterministic: `jit-<requestId>-<port>`. */
  name: string;
  /** Where the rule lives: NSG (or firewall) resource id. */
  scope: string;
  priority: number;
  direction: 'Inbound';
  /** Allow for grants; Deny for the rules "enable JIT" writes. */
  access: 'Allow' | 'Deny';
  protocol: Protocol;
  sourcePrefix: string;
  destinationPort: number;
  /** Carries request id and expiry, so a reconciler needs nothing but the rule. */
  description: string;
  requestId: string;
  expiresAt: number;
  /** For a DNAT rule: where people connect (the firewall's public IP and mapped port). */
  nat?: { publicAddress: string; publicPort: number; translatedPort: number };
  /**
   * The network provider's own reference for the write that made (or ended) this rule, audited
   * with it: Defender for Cloud's initiate call (`x-ms-request-id`, the request's start time).
   */
  ref?: string;
}

export interface RequestOrigin {
  /**
   * How the request came in: `cli`, `console`, `api`, or the name of the chat platform (the audit
   * event's `via`). Records stored before it was renamed say `channel`; the codec reads those.
   */
  via: string;
  /** Platform-specific reply address (a chat's response URL or conversation id ...). */
  replyTo?: string;
  /** The requester's IANA time zone from their platform profile (for `at 14:00`). */
  timeZone?: string;
}

export interface AccessRequest {
  id: RequestId;
  requester: PrincipalId;
  target: TargetName;
  targetId: string;
  ports: PortSpec[];
  /** Source prefix (normalised CIDR or `*`); null until the "my IP" link was opened. */
  source: string | null;
  durationMs: number;
  justification?: string;
  status: RequestStatus;
  /** Why it is in this status (deny reason, failure reason ...). */
  statusReason?: string;
  decisions: Decision[];
  createdAt: number;
  updatedAt: number;
  /** Pending (or awaiting source) requests time out at this instant. */
  approvalExpiresAt: number;
  /** Scheduled start (`at 14:00`): approval can happen ahead, the port opens at this instant. */
  startAt?: number;
  activatedAt?: number;
  expiresAt?: number;
  rules: AppliedRule[];
  origin: RequestOrigin;
  /** An extension the requester asked for that waits for approvers (policies that need approval). */
  pendingExtension?: { addMs: number; by: PrincipalId; at: number; decisions: Decision[] };
  /** Set when the request was escalated to the policy's escalation approvers. */
  escalatedAt?: number;
  /** Incremented by every committed transition; the store's compare-and-set key. */
  version: number;
}

export type AuditAction =
  | 'request.created'
  | 'request.awaiting_source'
  | 'request.source_recorded'
  | 'request.approval_vote'
  | 'request.approved'
  | 'request.denied'
  | 'request.timed_out'
  | 'request.escalated'
  | 'request.cancelled'
  | 'grant.activated'
  | 'grant.failed'
  | 'grant.extended'
  | 'grant.reminded'
  | 'grant.extension_requested'
  | 'grant.extension_vote'
  | 'grant.extension_denied'
  | 'grant.revoked'
  | 'grant.expired'
  | 'rule.applied'
  | 'rule.removed'
  | 'rule.reconciled'
  | 'policy.enforced'
  | 'policy.unenforced'
  /** A chat platform refused an approval card (or its destination failed): what was sent instead. */
  | 'notify.card_fallback';

export interface AuditEvent {
  /** Assigned by the log (Redis stream id); empty before append. */
  id?: string;
  time: number;
  actor: string;
  action: AuditAction;
  requestId: string;
  target: string;
  details: Record<string, string | number | boolean | null>;
}
