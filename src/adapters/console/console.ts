// The local web console: the embedded default's chat, at `/`, with the same Adaptive Cards as
// Teams rendered in the page by the adaptivecards JS renderer. It acts as any principal of the
// policy file, so it exists only with the local channel (loopback unless explicitly configured).
// The page's script is built from web/app.ts with esbuild when the server starts.
import type { ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { LocalFeed } from '../local/feed.js';
import type { AuditLog, NetworkGate } from '../../app/ports.js';
import type { JitService } from '../../app/service.js';
import { rolesAt } from '../../core/rbac.js';
import { connectionsFor } from '../../core/reply.js';
import type { PrincipalId } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { HttpError, sendJson, type Route } from '../../server.js';
import { approvalCardView } from '../chat/card-actions.js';

export interface ConsoleDeps {
  service: JitService;
  gate: NetworkGate;
  audit: AuditLog;
  feed: LocalFeed;
  log: Logger;
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>jit-bot console</title>
<style>
 body{font-family:system-ui,sans-serif;margin:0;background:#f3f4f6;color:#1b1b1b}
 header{background:#1d3b53;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:center}
 header h1{font-size:1.1rem;margin:0}
 main{display:grid;grid-template-columns:minmax(22rem,1fr) minmax(22rem,1fr);gap:1rem;padding:1rem}
 section{background:#fff;border-radius:8px;padding:.8rem;box-shadow:0 1px 2px #0002;overflow:auto}
 h2{font-size:1rem;margin:.2rem 0 .6rem}
 #chat{max-height:70vh}
 .msg{margin:.4rem 0}.me{text-align:right;color:#345}.me span{background:#dbeafe;padding:.3rem .6rem;border-radius:8px;display:inline-block}
 form{display:flex;gap:.5rem;margin-top:.6rem}input[type=text]{flex:1;padding:.5rem;font-size:1rem}
 table{border-collapse:collapse;width:100%;font-size:.85rem}td,th{border-bottom:1px solid #e5e7eb;padding:.25rem .4rem;text-align:left}
 .note{color:#555;font-size:.85rem}.toast{background:#fff7ed;border:1px solid #fdba74;padding:.4rem .6rem;border-radius:6px}
 code{font-size:.85rem}
</style></head>
<body>
<header><h1>jit-bot console</h1><label>You are <select id="who"></select></label><span class="note">local mode: acts as any principal of the policy file</span></header>
<main>
 <section><h2>Chat</h2><div id="chat"></div>
  <form id="say"><input id="text" type="text" autocomplete="off" placeholder="rdp vm1 2h from 203.0.113.7" aria-label="command"><button>Send</button></form></section>
 <section><h2>Pending requests</h2><div id="pending"></div>
  <h2>Active grants</h2><table id="active"><thead><tr><th>request</th><th>target</th><th>requester</th><th>closes in</th></tr></thead><tbody></tbody></table></section>
 <section><h2>Network rules (as the NSG shows them)</h2><table id="rules"><thead><tr><th>name</th><th>priority</th><th>source</th><th>port</th><th>expires</th></tr></thead><tbody></tbody></table></section>
 <section><h2>Audit</h2><table id="audit"><thead><tr><th>time</th><th>request</th><th>action</th><th>actor</th></tr></thead><tbody></tbody></table></section>
</main>
<script src="/console/adaptivecards.js"></script>
<script src="/console/app.js"></script>
</body></html>`;

let assets: Promise<{ appJs: string; acJs: string }> | undefined;

/** Builds the page's script (once per process) and loads the adaptivecards browser bundle. */
function loadAssets(): Promise<{ appJs: string; acJs: string }> {
  assets ??= (async () => {
    const entry = fileURLToPath(new URL('./web/app.ts', import.meta.url));
    const { build } = await import('esbuild');
    const bundle = await build({ entryPoints: [entry], bundle: true, write: false, format: 'iife', target: 'es2020', minify: true, logLevel: 'silent' });
    const require = createRequire(import.meta.url);
    const acJs = await readFile(require.resolve('adaptivecards/dist/adaptivecards.min.js'), 'utf8');
    return { appJs: bundle.outputFiles[0]!.text, acJs };
  })();
  return assets;
}

export async function createConsole(deps: ConsoleDeps): Promise<Route> {
  const { service, gate, audit, feed, log } = deps;

  const view = approvalCardView(service);

  const principalOf = (as: unknown): PrincipalId => {
    if (typeof as !== 'string' || !(as in service.policyBook().principals)) throw new HttpError(400, '"as" must be a principal of the policy file');
    return as;
  };


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
    if (!path.startsWith('/console/')) return false;
    if (req.method === 'GET' && path === '/console/app.js') return send(res, 'text/javascript; charset=utf-8', (await loadAssets()).appJs), true;
    if (req.method === 'GET' && path === '/console/adaptivecards.js') return send(res, 'text/javascript; charset=utf-8', (await loadAssets()).acJs), true;
    if (req.method === 'GET' && path === '/console/api/principals') {
      const book = service.policyBook();
      const rolesOf = (id: string) => [...new Set(Object.values(book.targets).flatMap((t) => rolesAt(book, id, t.id)))].join(', ') || 'no role';
      sendJson(res, 200, { principals: Object.keys(book.principals).map((id) => ({ id, roles: rolesOf(id) })) });
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
      const rules = await gate.list();
      const events = (await audit.list({ since: Date.now() - 3600_000, limit: 5000 })).slice(-60).reverse();
      sendJson(res, 200, { now: Date.now(), pending, active, rules, audit: events });
      return true;
    }
    if (req.method === 'GET' && path === '/console/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(': connected\n\n');
      const off = feed.subscribe((item) => res.write(`data: ${JSON.stringify({ seq: item.seq, kind: item.notification?.kind ?? item.audit?.action })}\n\n`));
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
