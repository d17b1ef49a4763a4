// What the bot answers, as data every chat adapter can render (text, Block Kit, Adaptive Card),
// plus a plain-text rendering used by the CLI and as the fallback text everywhere.
import type { AuditRow } from './audit-export.js';
import type { JitError } from './errors.js';
import type { PolicyLine } from './policy.js';
import { formatDuration } from './duration.js';
import { ANY } from './source.js';
import { isoSeconds, portLabel } from './format.js';
import { describeStatus } from './state.js';
import type { AccessRequest, AppliedRule, PortSpec, Target } from './types.js';

export interface Connection {
  host: string;
  port: number;
  /** A ready line: `mstsc /v:host:3389`, `ssh -p 22 user@host`. */
  command: string;
}

export type Reply =
  | { kind: 'rejected'; code: string; message: string; example?: string }
  | { kind: 'awaiting_source'; request: AccessRequest; link: string; linkExpiresAt: number }
  | { kind: 'pending_approval'; request: AccessRequest; approvers: string[] }
  | { kind: 'active'; request: AccessRequest; connections: Connection[] }
  | { kind: 'failed'; request: AccessRequest }
  | { kind: 'decided'; request: AccessRequest; decision: 'approve' | 'deny'; approvals: number; quorum: number }
  | { kind: 'closed'; request: AccessRequest }
  | { kind: 'extended'; request: AccessRequest }
  | { kind: 'extension_pending'; request: AccessRequest; approvers: string[] }
  | { kind: 'status'; request: AccessRequest; connections: Connection[] }
  | { kind: 'list'; scope: string; requests: AccessRequest[]; /** For an empty list: what else to try (`list all`). */ hint?: string }
  | { kind: 'info'; message: string }
  | { kind: 'inventory'; configured: InventoryRow[]; notConfigured: Array<{ name: string; id: string }>; unsupported: Array<{ name: string; id: string; reason: string }> }
  | { kind: 'policy'; target: string; targetId: string; os: string; lines: PolicyLine[] }
  | { kind: 'audit'; target?: string; since: number; rows: AuditRow[]; truncated: boolean }
  | { kind: 'help'; examples: string[]; note?: string };

/** A refusal as a reply (what every channel shows instead of throwing). */
export const rejectedReply = (e: JitError): Reply => ({
  kind: 'rejected',
  code: e.code,
  message: e.message,
  ...(e.example ? { example: e.example } : {}),
});

/**
 * How to connect for each port: the target's address, or, behind an Azure Firewall, the
 * firewall's public IP and the port the DNAT rule maps (from the applied rules).
 */
/** A configured target as Defender for Cloud's JIT blade lists it. */
export interface InventoryRow {
  name: string;
  id: string;
  ports: string;
  /** Requests approved in the last 7 days. */
  approved7d: number;
  lastAccessAt?: number;
  lastUser?: string;
  address: string;
}

export function connectionsFor(target: Target, ports: PortSpec[], rules: AppliedRule[] = []): Connection[] {
  return ports.map((p) => {
    const nat = rules.find((r) => r.nat && r.nat.translatedPort === p.port)?.nat;
    const host = nat ? nat.publicAddress : target.address ?? target.name;
    const port = nat ? nat.publicPort : p.port;
    let command = `${host}:${port}`;
    if (p.port === 3389) command = `mstsc /v:${host}:${port}`;
    else if (p.port === 22) command = `ssh -p ${port} ${target.user ? `${target.user}@` : ''}${host}`;
    else if (p.port === 5985 || p.port === 5986)
      command = `Enter-PSSession -ComputerName ${host} -Port ${port}${p.port === 5986 ? ' -UseSSL' : ''}`;
    return { host, port, command };
  });
}

/** A time as people read it: ISO 8601 UTC to the second. */
const iso = (ms: number | undefined) => (ms ? isoSeconds(ms) : '-');
const ports = (r: AccessRequest) => r.ports.map(portLabel).join(',');
const source = (r: AccessRequest) => (r.source === null ? '(awaiting)' : r.source === ANY ? 'Any' : r.source);

/** A scheduled request that has not opened yet: when it will. */
const startsPart = (r: AccessRequest) => (r.startAt && ['awaiting_source', 'pending', 'approved'].includes(r.status) ? `  starts ${iso(r.startAt)}` : '');

export function summarize(r: AccessRequest): string {
  return `${r.id}  ${r.status.padEnd(15)} ${r.target} ${ports(r)} from ${source(r)} for ${formatDuration(r.durationMs)}  by ${r.requester}${
    r.status === 'active' ? `  until ${iso(r.expiresAt)}` : ''
  }${startsPart(r)}`;
}

/** The commands that take a request id: syntax, not examples (ids come from `list`). */
export const HELP_ID_LINE = 'With a request id from list: status <id> · approve <id> · deny <id> [reason <text>] · revoke <id> · extend <id> <duration>';
/** The request forms in full (the examples above show those the person's targets allow). */
export const HELP_FORMS_LINE = 'Requests: rdp|ssh|winrm <vm> <duration> [from <address>] [reason <text>] [at <HH:MM>] · port <port>[/tcp|/udp][,<port>…] <vm> <duration> …';

/** Plain text for a reply; `prefix` is how the platform spells the command (`/jit`, `jit`, `npm run jit --`). */
export function renderText(reply: Reply, prefix = '/jit'): string {
  switch (reply.kind) {
    case 'rejected':
      return `✗ ${reply.message}${reply.example ? `; try ${prefix} ${reply.example}` : ''}`;
    case 'awaiting_source':
      return `Request ${reply.request.id}: open this link from the machine you will connect from, so the bot can record its address (valid until ${iso(reply.linkExpiresAt)}, one use): ${reply.link}`;
    case 'pending_approval':
      return `Request ${reply.request.id} is waiting for approval (${reply.request.target} ${ports(reply.request)} from ${source(reply.request)} for ${formatDuration(reply.request.durationMs)}${
        reply.request.startAt ? `, starting ${iso(reply.request.startAt)}` : ''
      }). Approvers: ${reply.approvers.join(', ') || 'none configured'}. Offer expires ${iso(reply.request.approvalExpiresAt)}.`;
    case 'active':
    case 'status': {
      const r = reply.request;
      const head =
        reply.kind === 'active'
          ? `✓ Request ${r.id} is open: ${r.target} ${ports(r)} from ${source(r)} until ${iso(r.expiresAt)}.`
          : // The summary already says "active … until"; other states get their sentence (who denied, when it opens).
            `${summarize(r)}${r.status === 'active' ? '' : `\n  ${r.id} ${describeStatus(r)}.`}`;
      const lines = r.status === 'active' ? reply.connections.map((c) => `  connect: ${c.command}`) : [];
      return [head, ...lines].join('\n');
    }
    case 'failed':
      return `✗ Request ${reply.request.id} ${describeStatus(reply.request)}. Nothing was left open.`;
    case 'decided': {
      const r = reply.request;
      if (r.status === 'active' && reply.decision === 'deny') return `Extension of ${r.id} denied; the grant still ends at ${iso(r.expiresAt)}.`;
      if (r.status === 'active' && r.pendingExtension) {
        return `Approval recorded for the extension of ${r.id} (${reply.approvals} of ${reply.quorum}).`;
      }
      if (reply.decision === 'deny') {
        return r.status === 'pending' ? `Denial recorded for ${r.id}; it needs more denials to end.` : `Request ${r.id} denied.`;
      }
      if (r.status === 'pending') return `Approval recorded for ${r.id} (${reply.approvals} of ${reply.quorum}).`;
      return `Request ${r.id} approved; ${r.status === 'active' ? `open until ${iso(r.expiresAt)}` : describeStatus(r)}.`;
    }
    case 'closed':
      return `Request ${reply.request.id} ${describeStatus(reply.request)}.`;
    case 'extended':
      return `Request ${reply.request.id} extended; now open until ${iso(reply.request.expiresAt)}.`;
    case 'extension_pending':
      return `Extension of ${reply.request.id} by ${formatDuration(reply.request.pendingExtension?.addMs ?? 0)} is waiting for approval. Approvers: ${
        reply.approvers.join(', ') || 'none configured'
      }. The grant ends at ${iso(reply.request.expiresAt)} unless it is approved.`;
    case 'list':
      return reply.requests.length === 0
        ? `No ${reply.scope === 'mine' ? 'requests of yours' : `${reply.scope} requests`} to show.${reply.hint ? ` ${reply.hint}` : ''}`
        : reply.requests.map(summarize).join('\n');
    case 'info':
      return reply.message;
    case 'inventory': {
      const out = [`Configured (${reply.configured.length}):`];
      for (const r of reply.configured) {
        out.push(`  ${r.name.padEnd(12)} ${r.ports.padEnd(16)} approved in 7 days: ${r.approved7d}  last access: ${r.lastAccessAt ? `${iso(r.lastAccessAt)} by ${r.lastUser}` : 'never'}  address: ${r.address}`);
      }
      out.push(`Not configured (${reply.notConfigured.length}):`, ...reply.notConfigured.map((v) => `  ${v.name.padEnd(12)} ${v.id}`));
      out.push(`Unsupported (${reply.unsupported.length}):`, ...reply.unsupported.map((v) => `  ${v.name.padEnd(12)} ${v.reason}`));
      return out.join('\n');
    }
    case 'policy': {
      const w = Math.max(...reply.lines.map((l) => l.key.length));
      const v = Math.min(60, Math.max(...reply.lines.map((l) => l.value.length)));
      return [`Policy for ${reply.target} (${reply.os}, ${reply.targetId}):`, ...reply.lines.map((l) => `  ${l.key.padEnd(w)}  ${l.value.padEnd(v)}  ← ${l.from}`)].join('\n');
    }
    case 'audit': {
      const head = `Audit${reply.target ? ` of ${reply.target}` : ''} since ${iso(reply.since)}: ${reply.rows.length} event${reply.rows.length === 1 ? '' : 's'}${reply.truncated ? ' (the most recent; export for all)' : ''}`;
      const shown = reply.rows.slice(-30);
      return [
        head,
        ...shown.map((r) => `  ${r.time.slice(0, 19).replace('T', ' ')}  ${r.operation.padEnd(22)} ${r.status.padEnd(9)} ${r.requestId}  ${r.target.padEnd(10)} ${r.caller}`),
        ...(reply.rows.length > shown.length ? [`  … ${reply.rows.length - shown.length} earlier events in the CSV export`] : []),
      ].join('\n');
    }
    case 'help':
      return [
        'Commands:',
        ...reply.examples.map((e) => `  ${prefix} ${e}`),
        ...(reply.note ? [reply.note] : []),
        HELP_FORMS_LINE,
        HELP_ID_LINE,
        'Durations: 30m, 2h, 1h30m or PT2H. Sources: an address (203.0.113.7) or a range (203.0.113.0/28).',
      ].join('\n');
  }
}
