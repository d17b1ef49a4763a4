// "Enable JIT" / "disable JIT" on a target (JIT Admin), and audit records the adapters ask for.
import { JitError } from '../core/errors.js';
import { effectivePolicy, findTarget, portLabel } from '../core/policy.js';
import { can } from '../core/rbac.js';
import type { Reply } from '../core/reply.js';
import type { AccessRequest, AuditEvent, PortSpec, PrincipalId, Target } from '../core/types.js';
import type { UseCaseContext } from './context.js';
import { appendAudit } from './transition.js';

/**
 * "Enable JIT" (JIT Admin): the bot's Deny rules for the policy's ports (or those given) on the
 * target's path. `system`: the server itself (targets marked `enforce: true`, at start).
 */
export async function enforce(ctx: UseCaseContext, actor: PrincipalId | 'system', name: string, ports?: PortSpec[]): Promise<Reply> {
  const target = managedTarget(ctx, actor, name);
  const policy = effectivePolicy(ctx.book, target);
  const want = ports ?? policy.ports.map((p) => ({ port: p.port, protocol: p.protocol }));
  const gate = ctx.deps.gate;
  if (!gate.enforce) {
    return { kind: 'info', message: `${target.name}: this network (simulated) keeps every port closed unless a grant opens it; nothing to enforce` };
  }
  const rules = await gate.enforce(target, want);
  // A lower-numbered Allow from anywhere (the portal's "RDP from Any") wins over any Deny: say so.
  const stillOpen = gate.exposures ? await gate.exposures(target, want) : [];
  await appendAudit(ctx, {
    time: ctx.now(), actor, action: 'policy.enforced', requestId: `policy-${target.name}`, target: target.name,
    details: { ports: want.map(portLabel).join(','), rules: rules.map((r) => `${r.scope.split('/').pop()}/${r.name}@${r.priority}`).join(',') || 'none needed (equivalent deny rules exist)', ...(stillOpen.length ? { stillOpen: stillOpen.join(',') } : {}) },
  });
  const warning = stillOpen.length ? `. NOT closed: ${stillOpen.join('; ')} allow${stillOpen.length === 1 ? 's' : ''} traffic from anywhere ahead of the Deny rules; remove or restrict ${stillOpen.length === 1 ? 'it' : 'them'}` : '';
  return {
    kind: 'info',
    message: (rules.length
      ? `${target.name}: ${want.map(portLabel).join(', ')} now denied by default (${rules.length} rule${rules.length === 1 ? '' : 's'} written); grants open them for their time`
      : `${target.name}: ${want.map(portLabel).join(', ')} were already denied by existing rules; nothing written`) + warning,
  };
}

export async function unenforce(ctx: UseCaseContext, actor: PrincipalId, name: string): Promise<Reply> {
  const target = managedTarget(ctx, actor, name);
  if (!ctx.deps.gate.unenforce) return { kind: 'info', message: `${target.name}: nothing to disable on this network (simulated)` };
  const removed = await ctx.deps.gate.unenforce(target);
  await appendAudit(ctx, {
    time: ctx.now(), actor, action: 'policy.unenforced', requestId: `policy-${target.name}`, target: target.name,
    details: { rules: removed.map((r) => `${r.scope.split('/').pop()}/${r.name}`).join(',') || 'none' },
  });
  return { kind: 'info', message: `${target.name}: removed ${removed.length} deny rule${removed.length === 1 ? '' : 's'} jit-bot had written; rules written by others are untouched` };
}

function managedTarget(ctx: UseCaseContext, actor: PrincipalId | 'system', name: string): Target {
  const target = findTarget(ctx.book, name);
  if (!target) throw new JitError('unknown_target', `unknown VM "${name}"`, 'help');
  if (actor !== 'system' && !can(ctx.book, actor, 'manage', target.id)) throw new JitError('forbidden', `only a JIT Admin for ${target.name} can change its policy`);
  return target;
}

/** A chat adapter's delivery problem worth an audit record (an approval card refused, and what was sent instead). */
export async function auditDelivery(ctx: UseCaseContext, req: AccessRequest, actor: string, details: AuditEvent['details']): Promise<void> {
  await appendAudit(ctx, { time: ctx.now(), actor, action: 'notify.card_fallback', requestId: req.id, target: req.target, details });
}
