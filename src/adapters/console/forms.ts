// The console's request form and home view: the same Adaptive Cards as Teams, and their clicks run
// through the same code as a Teams invoke (chat/form-actions.ts). Behind the local channel's check
// (the server refuses /console/* without its secret), acting as the principal the page selected.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JitService } from '../../app/service.js';
import type { ChatViews } from '../../app/views.js';
import type { PrincipalId } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { HttpError, readBody, sendJson } from '../../server.js';
import { approvalCardView } from '../chat/card-actions.js';
import { formCardFor, homeCardFor, runFormAction, type FormHost } from '../chat/form-actions.js';

/** The console's form and home routes; false for any other path. */
export function consoleForms(deps: { service: JitService; views: ChatViews; log: Logger; principalOf: (as: unknown) => PrincipalId }) {
  const host: FormHost = {
    service: deps.service,
    views: deps.views,
    platform: 'console',
    view: approvalCardView(deps.service),
    log: (msg, fields) => deps.log.warn(`console: ${msg}`, fields),
  };
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const path = url.pathname;
    if (req.method === 'GET' && path === '/console/api/form') {
      return sendJson(res, 200, { card: formCardFor(host, deps.principalOf(url.searchParams.get('as'))) }), true;
    }
    if (req.method === 'GET' && path === '/console/api/home') {
      // The page keeps the outcome of its last click on the home card on top (`note`) while redrawing it.
      const note = url.searchParams.get('note')?.slice(0, 600) || undefined;
      return sendJson(res, 200, { card: await homeCardFor(host, deps.principalOf(url.searchParams.get('as')), note) }), true;
    }
    if (req.method === 'POST' && path === '/console/api/action') {
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) throw new HttpError(415, 'the body must be JSON (content-type: application/json)');
      let body: { as?: unknown; verb?: unknown; data?: unknown; timeZone?: unknown };
      try {
        body = JSON.parse(await readBody(req, 64 * 1024)) as typeof body;
      } catch (err) {
        if (err instanceof HttpError) throw err;
        throw new HttpError(400, 'the body must be {"as", "verb", "data"} (JSON)');
      }
      const principal = deps.principalOf(body.as);
      if (typeof body.verb !== 'string' || body.verb.length > 40) throw new HttpError(400, '"verb" must be a card action verb');
      const data = body.data && typeof body.data === 'object' && !Array.isArray(body.data) ? (body.data as Record<string, unknown>) : {};
      const timeZone = typeof body.timeZone === 'string' && body.timeZone.length <= 64 ? body.timeZone : undefined;
      const result = await runFormAction(host, principal, body.verb, data, timeZone ? { timeZone } : {});
      return sendJson(res, 200, result), true;
    }
    return false;
  };
}
