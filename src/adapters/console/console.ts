// The local web console: the embedded default's chat, at `/`, with the same Adaptive Cards as
// Teams rendered in the page by the adaptivecards JS renderer. It acts as any principal of the
// policy file, so it exists only with the local channel (loopback unless explicitly configured).
// The page's script is web/app.ts built for browsers: carried by the server's bundle (dist/main.js,
// scripts/bundle.js), or built with esbuild on its first request when the server runs from source.
import type { ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { LocalFeed } from '../local/feed.js';
import type { AuditLog, NetworkGate } from '../../app/ports.js';
import type { JitService } from '../../app/service.js';
import type { ChatViews } from '../../app/views.js';
import { parsePrincipal } from '../../core/ids.js';
import { listedPrincipals } from '../../core/policy.js';
import { rolesAt } from '../../core/rbac.js';
import { connectionsFor } from '../../core/reply.js';
import type { PrincipalId } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { HttpError, sendJson, type Route } from '../../server.js';
import { approvalCardView } from '../chat/card-actions.js';
import { consoleForms } from './forms.js';

export interface ConsoleDeps {
  service: JitService;
  gate: NetworkGate;
  audit: AuditLog;
  feed: LocalFeed;
  log: Logger;
  /** The request form and home views (the same cards as Teams); absent: no form, no home. */
  views?: ChatViews;
}

const FONT = `"Segoe UI", system-ui, -apple-system, "Helvetica Neue", Roboto, Arial, sans-serif`;

/** The page's icon (also served for /favicon.ico): a shield with a keyhole. */
const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path d="M16 2 4 6.5v8.3c0 7.4 5.1 13.3 12 15.2 6.9-1.9 12-7.8 12-15.2V6.5z" fill="#1d3b53"/><path d="M16 5.2 7 8.6v6.2c0 5.7 3.8 10.4 9 12 5.2-1.6 9-6.3 9-12V8.6z" fill="#2dd4bf"/><circle cx="16" cy="13.5" r="3.2" fill="#1d3b53"/><path d="M14.6 15.5h2.8l1 6h-4.8z" fill="#1d3b53"/></svg>`;

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>jit-bot console</title>
<link rel="icon" type="image/svg+xml" href="/favicon.ico">
<style>
 :root{--font:${FONT};--mono:ui-monospace,"Cascadia Mono","SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--navy:#1d3b53;--teal:#0f766e}
 *{box-sizing:border-box}
 body{font-family:var(--font);font-size:14px;margin:0;background:#eef1f5;color:var(--ink)}
 header{background:var(--navy);color:#fff;padding:.55rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
 header h1{font-size:1.05rem;margin:0;display:flex;align-items:center;gap:.5rem;font-weight:650;letter-spacing:.01em}
 header h1 img{width:22px;height:22px}
 header label{display:flex;align-items:center;gap:.5rem;color:#e2e8f0}
 header select{font:inherit;padding:.3rem .5rem;border-radius:6px;border:1px solid #94a3b8;background:#fff;color:var(--ink)}
 .mode{margin-left:auto;font-size:.8rem;color:#fde68a;background:#ffffff1a;border:1px solid #fde68a66;border-radius:999px;padding:.2rem .7rem}
 main{display:grid;grid-template-columns:minmax(24rem,1fr) minmax(24rem,1fr);gap:1rem;padding:1rem 1.2rem}
 section{background:#fff;border-radius:10px;padding:.9rem 1rem;box-shadow:0 1px 2px #0f172a14,0 0 0 1px #0f172a0d;overflow:auto;min-width:0}
 h2.row{display:flex;align-items:center;gap:.5rem}h2 .tools{margin-left:auto;display:flex;gap:.4rem;text-transform:none;letter-spacing:0}h2 .tools button{padding:.3rem .7rem;font-size:.8rem}
 [hidden]{display:none !important}
 h2{font-size:.8rem;margin:.1rem 0 .7rem;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);font-weight:650}
 h2+*+h2,#pending+h2{margin-top:1.2rem}
 #talk{display:flex;flex-direction:column;height:min(46rem,calc(100vh - 5.5rem));min-height:24rem;overflow:hidden}
 #chat{flex:1 1 auto;min-height:0;overflow-y:auto;overscroll-behavior:contain;padding-right:.3rem;scroll-behavior:auto}
 .msg{margin:.55rem 0}.me{text-align:right}.me span{background:#dbeafe;color:#1e3a5f;padding:.35rem .7rem;border-radius:12px 12px 2px 12px;display:inline-block;max-width:85%;text-align:left;overflow-wrap:anywhere}
 .msg .plain{color:var(--muted)}
 #say{display:flex;gap:.5rem;margin-top:.6rem;flex:none;border-top:1px solid var(--line);padding-top:.7rem}
 #text{flex:1;padding:.55rem .7rem;font:inherit;font-size:.95rem;border:1px solid #cbd5e1;border-radius:8px}
 #text:focus,.ac-input:focus{outline:2px solid #2563eb55;border-color:#2563eb}
 button{font:600 .85rem var(--font);cursor:pointer;border-radius:8px;border:1px solid #cbd5e1;background:#fff;color:var(--navy);padding:.45rem .9rem}
 button:hover{background:#f1f5f9}
 #say button{background:var(--navy);border-color:var(--navy);color:#fff;padding:.5rem 1.1rem}
 #say button:hover{background:#284f6e}
 .grid{border-collapse:collapse;width:100%;font-size:.85rem}.grid td,.grid th{border-bottom:1px solid var(--line);padding:.35rem .45rem;text-align:left;vertical-align:middle}
 .grid th{font-weight:600;color:var(--muted);font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;white-space:nowrap}
 #active{table-layout:fixed}#active th:nth-child(1){width:17%}#active th:nth-child(2){width:21%}#active th:nth-child(3){width:11%}#active th:nth-child(4){width:51%}
 #active td,#active th{overflow:hidden;text-overflow:ellipsis}
 .grid .who{display:block;color:var(--muted);font-size:.78rem}
 .grid .line .cmd{overflow:hidden;text-overflow:ellipsis;font-size:.75rem}
 .countdown{font-variant-numeric:tabular-nums}
 .empty{color:var(--muted);font-style:italic}
 .toast{background:#fff7ed;border:1px solid #fdba74;padding:.45rem .7rem;border-radius:8px;margin:.3rem 0}
 code,.cmd{font-family:var(--mono);font-size:.82rem}
 .card{border:1px solid var(--line);border-radius:10px;background:#fff;margin:.2rem 0 .6rem;box-shadow:0 1px 2px #0f172a0f;overflow:hidden;max-width:40rem}
 .msg .card{display:inline-block;width:100%;text-align:left}
 .bar{display:flex;align-items:center;gap:.6rem;padding:.45rem .9rem;background:#f8fafc;border-bottom:1px solid var(--line);font-size:.8rem;color:var(--muted)}
 .bar:empty{display:none}
 .badge{display:inline-flex;align-items:center;gap:.35em;font:700 .68rem/1 var(--font);letter-spacing:.06em;text-transform:uppercase;padding:.32em .65em;border-radius:999px;border:1px solid}
 .badge::before{content:"";width:.5em;height:.5em;border-radius:50%;background:currentColor}
 .b-pending,.b-awaiting_source{color:#92400e;background:#fef3c7;border-color:#fcd34d}
 .b-approved{color:#1e40af;background:#dbeafe;border-color:#93c5fd}
 .b-active{color:#166534;background:#dcfce7;border-color:#86efac}
 .b-denied,.b-failed{color:#991b1b;background:#fee2e2;border-color:#fca5a5}
 .b-expired,.b-revoked,.b-cancelled,.b-timed_out{color:#475569;background:#f1f5f9;border-color:#cbd5e1}
 .card:is([data-status=expired],[data-status=revoked],[data-status=denied],[data-status=timed_out],[data-status=cancelled],[data-status=failed]) .body{opacity:.72}
 .card:is([data-status=expired],[data-status=revoked],[data-status=denied],[data-status=timed_out],[data-status=cancelled],[data-status=failed]) .body .copy{display:none}
 .connect{display:flex;flex-direction:column;gap:.35rem;padding:.55rem .9rem;border-top:1px solid var(--line);background:#f0fdf4}
 .connect:empty{display:none}
 .connect .label{font-size:.75rem;font-weight:650;color:#166534;text-transform:uppercase;letter-spacing:.05em}
 .bar .rid{margin-left:auto;font-family:var(--mono);font-size:.75rem}
 .line{display:flex;align-items:center;gap:.5rem;min-width:0}
 .line .cmd{flex:1;min-width:0;overflow-x:auto;white-space:nowrap;background:#0f172a;color:#e2e8f0;border-radius:6px;padding:.35rem .6rem}
 .copy{padding:.3rem .7rem;font-size:.78rem;flex:none}
 .copy.done{color:#166534;border-color:#86efac;background:#dcfce7}
 .copy.icon{width:2rem;height:1.85rem;padding:0;background:#fff url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16' fill='none' stroke='%231d3b53' stroke-width='1.5'%3E%3Crect x='5.5' y='5.5' width='8' height='8' rx='1.5'/%3E%3Cpath d='M10.5 3.5v-.5a1.5 1.5 0 0 0-1.5-1.5H4A1.5 1.5 0 0 0 2.5 3v5A1.5 1.5 0 0 0 4 9.5h.5'/%3E%3C/svg%3E") center/1rem no-repeat}
 .copy.icon.done{background:#dcfce7 url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Cpath d='M3.5 8.5l3 3 6-7' fill='none' stroke='%23166534' stroke-width='2' stroke-linecap='round' stroke-linejoin='round'/%3E%3C/svg%3E") center/1rem no-repeat}
 .ac-textBlock p{margin:0}.ac-textBlock ul,.ac-textBlock ol{margin:.2em 0;padding-left:1.4em}
 .ac-textBlock.mono{white-space:pre-wrap}
 .ac-pushButton{font:600 .85rem var(--font);border-radius:8px;padding:.45rem 1rem;border:1px solid #cbd5e1;background:#fff;color:var(--navy);cursor:pointer;flex:0 0 auto !important;min-width:6rem}
 .ac-pushButton:hover{background:#f1f5f9}
 .ac-pushButton.style-positive{background:#15803d;border-color:#15803d;color:#fff}
 .ac-pushButton.style-positive:hover{background:#166534}
 .ac-pushButton.style-destructive{background:#fff;border-color:#fca5a5;color:#b91c1c}
 .ac-pushButton.style-destructive:hover{background:#fef2f2}
 .ac-pushButton:focus-visible{outline:2px solid #2563eb;outline-offset:2px}
 .ac-input.ac-textInput{font:inherit;font-size:.9rem;border:1px solid #cbd5e1;border-radius:8px;padding:.45rem .6rem;width:100%}
 .ac-input.ac-multiline{min-height:3.4rem;resize:vertical}
 .ac-input:is(.ac-multichoiceInput,.ac-dateInput,.ac-timeInput){font:inherit;font-size:.9rem;border:1px solid #cbd5e1;border-radius:8px;padding:.4rem .5rem;background:#fff;color:var(--ink)}
 #homePanel{align-self:start}
 .ico{display:inline-block;width:1.05em;height:1.05em;vertical-align:-.17em;background:no-repeat center/contain;margin-right:.15em}
 .ico-ok{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='8' fill='%2315803d'/%3E%3Cpath d='M4.5 8.3l2.3 2.3 4.7-4.9' fill='none' stroke='%23fff' stroke-width='1.8' stroke-linecap='round' stroke-linejoin='round'/%3E%3C/svg%3E")}
 .ico-no{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='8' fill='%23b91c1c'/%3E%3Cpath d='M5.3 5.3l5.4 5.4M10.7 5.3l-5.4 5.4' stroke='%23fff' stroke-width='1.8' stroke-linecap='round'/%3E%3C/svg%3E")}
 .ico-up{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='8' fill='%231d4ed8'/%3E%3Cpath d='M8 12V4.5M4.8 7.5L8 4.3l3.2 3.2' fill='none' stroke='%23fff' stroke-width='1.8' stroke-linecap='round' stroke-linejoin='round'/%3E%3C/svg%3E")}
 .ico-open{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect x='2.5' y='7' width='11' height='8' rx='1.5' fill='%2315803d'/%3E%3Cpath d='M5 7V4.8a3 3 0 0 1 5.8-1.1' fill='none' stroke='%2315803d' stroke-width='1.7' stroke-linecap='round'/%3E%3Ccircle cx='8' cy='11' r='1.2' fill='%23fff'/%3E%3C/svg%3E")}
 .ico-locked{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect x='2.5' y='7' width='11' height='8' rx='1.5' fill='%23475569'/%3E%3Cpath d='M5 7V5a3 3 0 0 1 6 0v2' fill='none' stroke='%23475569' stroke-width='1.7'/%3E%3Ccircle cx='8' cy='11' r='1.2' fill='%23fff'/%3E%3C/svg%3E")}
 .ico-time{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='7' fill='none' stroke='%23b45309' stroke-width='1.8'/%3E%3Cpath d='M8 4.3V8l2.6 1.6' fill='none' stroke='%23b45309' stroke-width='1.8' stroke-linecap='round'/%3E%3C/svg%3E")}
 .ico-warn{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Cpath d='M8 1.2L15.3 14.5H.7z' fill='%23b45309'/%3E%3Cpath d='M8 6v4' stroke='%23fff' stroke-width='1.8' stroke-linecap='round'/%3E%3Ccircle cx='8' cy='12.2' r='1' fill='%23fff'/%3E%3C/svg%3E")}
</style></head>
<body>
<header><h1><img src="/favicon.ico" alt="">jit-bot console</h1><label>You are <select id="who" aria-label="act as"></select></label><span class="mode" title="Anyone who can open this page can act as any principal: keep it on loopback">Local mode · acts as any principal of the policy file</span></header>
<main>
 <section id="talk"><h2 class="row">Chat<span class="tools"><button type="button" id="formBtn">Request access</button><button type="button" id="homeBtn">Home</button></span></h2><div id="chat" role="log" aria-live="polite"></div>
  <form id="say"><input id="text" type="text" autocomplete="off" placeholder="jit (a form), home, or rdp vm1 2h from 203.0.113.7 reason &quot;INC-1234&quot;" aria-label="command"><button>Send</button></form></section>
 <section id="homePanel" hidden><h2>Home</h2><div id="home"></div></section>
 <section><h2>Pending requests</h2><div id="pending"></div>
  <h2>Active grants</h2><table id="active" class="grid"><thead><tr><th>request</th><th>target</th><th>closes</th><th>connect</th></tr></thead><tbody></tbody></table></section>
 <section><h2>Network rules (as the NSG shows them)</h2><table id="rules" class="grid"><thead><tr><th>name</th><th>priority</th><th>source</th><th>port</th><th>expires</th></tr></thead><tbody></tbody></table></section>
 <section><h2>Audit</h2><table id="audit" class="grid"><thead><tr><th>time</th><th>request</th><th>action</th><th>actor</th></tr></thead><tbody></tbody></table></section>
</main>
<script src="/console/adaptivecards.js"></script>
<script src="/console/app.js"></script>
</body></html>`;

/** The page's script, built by scripts/bundle.js (the same esbuild options as below) when this runs from dist/. */
declare const __JIT_CONSOLE_APP_JS__: string | undefined;

let assets: Promise<{ appJs: string; acJs: string }> | undefined;

/** The page's script (from the bundle, or built once per process) and the adaptivecards browser bundle. */
function loadAssets(): Promise<{ appJs: string; acJs: string }> {
  assets ??= (async () => {
    let appJs: string;
    if (typeof __JIT_CONSOLE_APP_JS__ === 'string') appJs = __JIT_CONSOLE_APP_JS__;
    else {
      const entry = fileURLToPath(new URL('./web/app.ts', import.meta.url));
      const { build } = await import('esbuild');
      const bundle = await build({ entryPoints: [entry], bundle: true, write: false, format: 'iife', target: 'es2020', minify: true, logLevel: 'silent' });
      appJs = bundle.outputFiles[0]!.text;
    }
    const require = createRequire(import.meta.url);
    const acJs = await readFile(require.resolve('adaptivecards/dist/adaptivecards.min.js'), 'utf8');
    return { appJs, acJs };
  })();
  return assets;
}

export async function createConsole(deps: ConsoleDeps): Promise<Route> {
  const { service, gate, audit, feed, log } = deps;

  const view = approvalCardView(service);

  const principalOf = (as: unknown): PrincipalId => {
    const p = typeof as === 'string' ? parsePrincipal(as) : undefined;
    if (!p || !Object.hasOwn(service.policyBook().principals, p)) throw new HttpError(400, '"as" must be a principal of the policy file');
    return p;
  };
  const forms = deps.views ? consoleForms({ service, views: deps.views, log, principalOf }) : undefined;


  const send = (res: ServerResponse, type: string, body: string) => {
    res.writeHead(200, {
      'content-type': type,
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
    });
    res.end(body);
  };

  return async (req, res, url) => {
    const path = url.pathname;
    if (req.method === 'GET' && path === '/') return send(res, 'text/html; charset=utf-8', PAGE), true;
    if (req.method === 'GET' && path === '/favicon.ico') return send(res, 'image/svg+xml', ICON_SVG), true;
    if (!path.startsWith('/console/')) return false;
    if (req.method === 'GET' && path === '/console/app.js') return send(res, 'text/javascript; charset=utf-8', (await loadAssets()).appJs), true;
    if (req.method === 'GET' && path === '/console/adaptivecards.js') return send(res, 'text/javascript; charset=utf-8', (await loadAssets()).acJs), true;
    if (forms && (await forms(req, res, url))) return true;
    if (req.method === 'GET' && path === '/console/api/principals') {
      const book = service.policyBook();
      const rolesOf = (id: PrincipalId) => [...new Set(Object.values(book.targets).flatMap((t) => rolesAt(book, id, t.id)))].join(', ') || 'no role';
      sendJson(res, 200, { principals: listedPrincipals(book).map(([id]) => ({ id, roles: rolesOf(id) })) });
      return true;
    }
    if (req.method === 'GET' && path === '/console/api/state') {
      const as = principalOf(url.searchParams.get('as'));
      const recent = await service.recent(200);
      const pending = await Promise.all(
        recent
          .filter((r) => r.status === 'pending' || (r.status === 'active' && r.pendingExtension))
          .map(async (r) => ({ id: r.id, card: await view(r, r.status === 'pending' ? 'request' : 'extension', as) })),
      );
      const active = recent
        .filter((r) => r.status === 'active')
        .map((r) => {
          const t = service.policyBook().targets[r.target];
          return { id: r.id, target: r.target, requester: r.requester, expiresAt: r.expiresAt, connections: t ? connectionsFor(t, r.ports, r.rules) : [] };
        });
      // Each request's state, so the page's badges and countdowns follow the grant.
      const requests = recent.map((r) => ({
        id: r.id,
        status: r.status,
        version: r.version,
        approvalExpiresAt: r.approvalExpiresAt,
        ...(r.startAt ? { startAt: r.startAt } : {}),
        ...(r.expiresAt ? { expiresAt: r.expiresAt } : {}),
      }));
      const rules = await gate.list();
      const events = (await audit.list({ since: Date.now() - 3600_000, limit: 5000 })).slice(-60).reverse();
      sendJson(res, 200, { now: Date.now(), pending, active, requests, rules, audit: events });
      return true;
    }
    if (req.method === 'GET' && path === '/console/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(': connected\n\n');
      const off = feed.subscribe((item) => res.write(`data: ${JSON.stringify({ seq: item.seq, kind: item.notification?.kind ?? item.audit?.action, requestId: item.notification?.requestId ?? item.audit?.requestId })}\n\n`));
      const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
      req.on('close', () => {
        off();
        clearInterval(ping);
      });
      return true;
    }
    return false;
  };
}
