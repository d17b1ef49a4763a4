// What a click on an Adaptive Card button does, for every host of the cards (Teams invokes, the
// local console): verbs approve / deny / ext_approve / ext_deny / revoke / extend / refresh, with
// data carrying only the request id (and for extend the milliseconds). The clicker is always the
// caller's authenticated principal, never a value in the data.
import { approvalCardOf } from '../../app/chat/notifier.js';
import type { DecisionScope, JitService } from '../../app/service.js';
import { isJitError, type JitErrorCode } from '../../core/errors.js';
import { REQUEST_ID_RE } from '../../core/ids.js';
import { renderText } from '../../core/reply.js';
import type { AccessRequest, PrincipalId } from '../../core/types.js';
import type { CardJson } from '../teams/cards.js';
import { VERBS } from './verbs.js';

/** A refusal carries its code: a host answers not_found as 404 (as GET /requests/{id} does). */
export type CardActionResult = { kind: 'card'; card: CardJson } | { kind: 'message'; text: string; code?: JitErrorCode };

/** Renders the approval card for `viewer` (buttons only if they may decide). */
export type CardView = (req: AccessRequest, scope: DecisionScope, viewer: PrincipalId, outcome?: 'approved' | 'denied') => Promise<CardJson>;

export async function runCardAction(
  service: JitService,
  principal: PrincipalId,
  verb: string,
  data: Record<string, unknown>,
  view: CardView,
  log: (msg: string, fields?: Record<string, unknown>) => void,
): Promise<CardActionResult> {
  const id = typeof data.requestId === 'string' ? data.requestId : '';
  const say = (text: string): CardActionResult => ({ kind: 'message', text });
  if (!REQUEST_ID_RE.test(id)) return say('✗ This card does not name a request; nothing changed.');
  try {
    switch (verb) {
      case VERBS.refresh: {
        // Only a request the clicker may see: one that does not exist and one they may not see
        // get the same not_found (a refresh is a read like `status`).
        const req = await service.visibleRequest(principal, id);
        return { kind: 'card', card: await view(req, data.scope === 'extension' ? 'extension' : 'request', principal) };
      }
      case VERBS.approve:
      case VERBS.deny:
      case VERBS.extApprove:
      case VERBS.extDeny: {
        const scope: DecisionScope = verb === VERBS.extApprove || verb === VERBS.extDeny ? 'extension' : 'request';
        const decision = verb === VERBS.approve || verb === VERBS.extApprove ? 'approve' : 'deny';
        // Checked by the service like any reason (length, no control characters): refused, not cut.
        const reason = typeof data.reason === 'string' && data.reason.trim() ? data.reason : undefined;
        await service.decide(principal, id, decision, reason, scope);
        const req = (await service.get(id))!;
        // An extension decided by this click: say how it ended (the pending part is gone).
        const outcome = scope === 'extension' && !req.pendingExtension ? (decision === 'approve' ? 'approved' : 'denied') : undefined;
        return { kind: 'card', card: await view(req, scope, principal, outcome) };
      }
      case VERBS.revoke:
        return say(renderText(await service.revoke(principal, id), 'jit'));
      case VERBS.extend: {
        const addMs = Number(data.addMs);
        if (!Number.isInteger(addMs) || addMs <= 0) return say('✗ This button does not name an extension; nothing changed.');
        return say(renderText(await service.extend(principal, id, addMs), 'jit'));
      }
      default:
        return say(`✗ Unknown action "${verb.slice(0, 40)}"; nothing changed.`);
    }
  } catch (err) {
    if (isJitError(err)) return { kind: 'message', text: `✗ ${err.format('jit')}`, code: err.code };
    log('card action failed', { err, verb });
    return say('✗ Something went wrong on our side; nothing was changed.');
  }
}

/**
 * The approval card as `viewer` sees it (buttons only for someone who may decide), for hosts that
 * render cards themselves (the web console, any Adaptive Card host calling the REST API). The
 * renderer (and its templating library) loads on first use.
 */
export function approvalCardView(service: JitService): CardView {
  return async (req, scope, viewer, outcome) => {
    const card = await approvalCardOf(service, req, scope, viewer, outcome);
    const { cardOf } = await import('../teams/cards.js');
    return cardOf(card, []);
  };
}
