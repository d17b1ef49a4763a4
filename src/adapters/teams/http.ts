// The HTTP side of POST /api/messages: what botbuilder expects of a request and a response, and
// who may post there in unauthenticated local mode.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../../server.js';
import { refuseNonLocal } from '../local/auth.js';

/** botbuilder expects Express-like request / response objects. */
export function expressShim(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>) {
  const shimReq = { body, headers: req.headers as Record<string, string | string[] | undefined>, method: req.method ?? 'POST' };
  const shimRes = {
    socket: req.socket,
    status(code: number) {
      res.statusCode = code;
      return shimRes;
    },
    header(name: string, value: unknown) {
      if (!res.headersSent) res.setHeader(name, String(value));
      return shimRes;
    },
    send(payload?: unknown) {
      if (res.writableEnded) return shimRes;
      if (payload === undefined || payload === null) res.end();
      else if (typeof payload === 'string' || Buffer.isBuffer(payload)) res.end(payload);
      else {
        if (!res.headersSent) res.setHeader('content-type', 'application/json; charset=utf-8');
        res.end(JSON.stringify(payload));
      }
      return shimRes;
    },
    end() {
      if (!res.writableEnded) res.end();
      return shimRes;
    },
  };
  return { shimReq, shimRes };
}

/**
 * Unauthenticated mode (TEAMS_ALLOW_UNAUTHENTICATED, no app id): anyone who can POST here is
 * believed about who they are, so only a local tool may: JSON only (a browser cannot send it
 * cross-site without a preflight nobody answers), no cross-site request, no proxy, a loopback Host.
 */
export function refuseForeign(req: IncomingMessage): void {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'unauthenticated Teams mode: the body must be application/json');
  if (req.headers.origin !== undefined || (req.headers['sec-fetch-site'] !== undefined && req.headers['sec-fetch-site'] !== 'none')) {
    throw new HttpError(403, 'unauthenticated Teams mode refuses requests from web pages');
  }
  refuseNonLocal(req, 'unauthenticated Teams mode');
}
