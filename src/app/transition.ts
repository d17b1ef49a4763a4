// The one way a request changes state: read it, apply the pure transition (src/core/state.ts),
// compare-and-set it with its audit events in one step, then hand the events to the audit
// channels; people are told afterwards with `notify`. Every use case goes through here.
import { JitError } from '../core/errors.js';
import { applyTransition, type Transition } from '../core/state.js';
import type { AccessRequest, AuditEvent } from '../core/types.js';
import type { UseCaseContext } from './context.js';
import type { Notification } from './ports.js';
import { CAS_ATTEMPTS } from './settings.js';

/** Thrown inside a transition when a grant was extended after the caller decided to expire it. */
export class ExtendedMeanwhile extends Error {
  /** `retryAt`: when the revocation is due now (the new expiry, less its close lead). */
  constructor(readonly retryAt: number) {
    super('extended meanwhile');
  }
}

/**
 * Read, apply the pure transition, compare-and-set; on a lost race, read again and re-decide
 * (`make` sees the request as it is now, and may throw to give up). The audit events are stored
 * by the same compare-and-set, then sent to the audit channels.
 */
export async function transition(ctx: UseCaseContext, id: string, make: (current: AccessRequest) => Transition): Promise<AccessRequest> {
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const current = await ctx.mustGet(id);
    const { next, events } = applyTransition(current, make(current), ctx.now());
    if (await ctx.deps.store.compareAndSet(next, current.version, events)) {
      await emitAudit(ctx, events);
      return { ...next, version: current.version + 1 };
    }
  }
  throw new JitError('conflict', `request ${id} is changing too fast; try again`);
}

/** An audit event outside a transition (rules written or removed, reminders, policy changes). */
export async function appendAudit(ctx: UseCaseContext, e: AuditEvent): Promise<void> {
  const stored = await ctx.deps.audit.append(e);
  await emitAudit(ctx, [stored]);
}

/** Hands stored events to the audit channels; a failing channel is logged, never fails the use case. */
export async function emitAudit(ctx: UseCaseContext, events: AuditEvent[]): Promise<void> {
  for (const e of events) {
    try {
      await ctx.deps.notifier.audit(e);
    } catch (err) {
      ctx.log('audit notifier failed', err);
    }
  }
}

/** Tells people (chat adapters); a failing notifier is logged, never fails the use case. */
export async function notify(ctx: UseCaseContext, n: Notification): Promise<void> {
  try {
    await ctx.deps.notifier.notify(n);
  } catch (err) {
    ctx.log(`notifier failed for ${n.kind} ${n.request.id}`, err);
  }
}

export function auditEvent(req: AccessRequest, action: AuditEvent['action'], actor: string, now: number, details: AuditEvent['details'] = {}): AuditEvent {
  return { time: now, actor, action, requestId: req.id, target: req.target, details };
}
