// `policy <vm>`: a target's effective policy as lines, each with the policy (or default) it comes
// from. Pure; policy.ts re-exports it.
import { portLabel } from './format.js';
import type { EffectivePolicy } from './policy.js';
import { ANY } from './source.js';

/** One line of `policy <vm>`: a setting, its effective value, and where it was set. */
export interface PolicyLine {
  key: string;
  value: string;
  from: string;
}

const dur = (ms: number): string => {
  const h = Math.floor(ms / 3600_000);
  const m = Math.round((ms % 3600_000) / 60_000);
  return h && m ? `${h}h${m}m` : h ? `${h}h` : `${m}m`;
};

/** The effective policy of a target as lines, each with the policy (or default) it comes from. */
export function describePolicy(policy: EffectivePolicy): PolicyLine[] {
  const o = policy.origin;
  const lines: PolicyLine[] = [];
  for (const r of policy.ports) {
    const exactly = r.exactSources && !r.allowedSourcePrefixes.includes(ANY) ? 'exactly ' : '';
    lines.push({ key: `port ${portLabel(r)}`, value: `max ${dur(r.maxDurationMs)}, from ${exactly}${r.allowedSourcePrefixes.map((s) => (s === ANY ? 'any' : s)).join(', ')}`, from: o.ports ?? 'default' });
  }
  const a = policy.approval;
  const approvalValues: Record<string, string> = {
    required: a.required ? 'yes' : 'no (opens at once)',
    approvers: a.approvers.length ? a.approvers.join(', ') : 'anyone with JIT Approver or JIT Admin covering the VM',
    quorum: String(a.quorum),
    denyQuorum: String(a.denyQuorum),
    timeoutMs: dur(a.timeoutMs),
    selfApproval: a.selfApproval ? 'allowed' : 'not allowed',
  };
  for (const [k, v] of Object.entries(approvalValues)) lines.push({ key: `approval.${k === 'timeoutMs' ? 'timeout' : k}`, value: v, from: o[`approval.${k}`] ?? 'default' });
  for (const [k, v] of Object.entries(a)) {
    if (Object.hasOwn(approvalValues, k) || v === undefined) continue;
    lines.push({ key: `approval.${k}`, value: typeof v === 'object' ? JSON.stringify(v) : String(v), from: o[`approval.${k}`] ?? 'default' });
  }
  const j = policy.justification;
  lines.push({ key: 'justification', value: j.required ? `required${j.pattern ? ` matching ${j.pattern}` : ''}` : 'optional', from: o['justification.required'] ?? o['justification.pattern'] ?? 'default' });
  lines.push({ key: 'reminder', value: policy.reminder.beforeMs > 0 ? `${dur(policy.reminder.beforeMs)} before expiry, extend by ${policy.reminder.extendOptionsMs.map(dur).join(' / ') || '—'}` : 'none', from: o['reminder.beforeMs'] ?? 'default' });
  lines.push({ key: 'autoApprove', value: policy.autoApprove.length ? policy.autoApprove.map((r) => r.name).join(', ') : 'none', from: o.autoApprove ?? 'default' });
  if (policy.routing.length) lines.push({ key: 'routing', value: policy.routing.map((r) => r.name).join(', '), from: o.routing ?? 'default' });
  for (const [platform, c] of Object.entries(policy.channels).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [kind, where] of Object.entries(c)) lines.push({ key: `channels.${platform}.${kind}`, value: String(where), from: o[`channels.${platform}.${kind}`] ?? 'default' });
  }
  lines.push({ key: 'timeZone', value: policy.timeZone, from: o.timeZone ?? 'default' });
  if (policy.target.enforce) lines.push({ key: 'enforce', value: 'yes (deny rules written at start)', from: 'target' });
  return lines;
}
