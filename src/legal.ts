// The pages the Teams app manifest links to (developer.privacyUrl / termsOfUseUrl): GET /privacy
// and /terms, with default texts. server.ts re-exports them.
import type { Route } from './server.js';
import { escapeHtml, page, sendHtml } from './http-io.js';

/** Default texts of the pages the Teams manifest links to (developer.privacyUrl / termsOfUseUrl). */
export const DEFAULT_PRIVACY_TEXT = `jit-bot is run by your organisation to grant time-limited network access to its virtual machines.

It keeps, for each access request: who asked (your sign-in name or email as the chat platform gives it, and your Slack or Teams user id), the machine, ports, source address, duration, justification, and who approved, denied, extended or closed it, with times. This is kept in your organisation's Redis and in an append-only audit log, and posted to the audit channel your administrators chose.

It sends messages through Slack or Microsoft Teams and changes network rules in your organisation's Azure subscription. It shares nothing with anyone else. Ask your administrators how long the audit log is kept.`;
export const DEFAULT_TERMS_TEXT = `jit-bot is an internal tool of your organisation. Request only access you need for your work and are allowed to have. Every request, decision and network change is recorded in an audit log and may be reviewed.

Access is granted for the duration shown and closed automatically; the administrators may close it at any time.`;

/** GET /privacy and /terms: the pages the Teams app manifest links to (text from JIT_PRIVACY_TEXT / JIT_TERMS_TEXT). */
export function legalPages(texts: { privacy: string; terms: string }): Route {
  const render = (title: string, text: string) =>
    page(
      title,
      text
        .split(/\n\s*\n/)
        .map((p) => p.trim())
        .filter(Boolean)
        .map((p) => `<p>${escapeHtml(p)}</p>`)
        .join('\n'),
    );
  const pages: Record<string, string> = { '/privacy': render('jit-bot: privacy', texts.privacy), '/terms': render('jit-bot: terms of use', texts.terms) };
  return async (req, res, url) => {
    const html = pages[url.pathname];
    if (html === undefined) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET only');
      return true;
    }
    sendHtml(res, 200, req.method === 'HEAD' ? '' : html);
    return true;
  };
}
