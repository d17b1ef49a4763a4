// The local chat channel from a terminal:
//   npm run jit -- as alice@contoso.com rdp vm1 2h from 203.0.113.7
//   npm run jit -- as bob@contoso.com approve <id>
//   npm run jit -- rules            (the simulated NSG rules)
//   npm run jit -- audit [<id>]     (the audit log)
//   npm run jit -- login            (a fresh one-time login link for the web console)
//   JIT_API_TOKEN=jit_… npm run jit -- rdp vm1 2h   (as the token's principal, on any server)
// Commands go to the REST API (POST /api/v1/commands): as a principal named with `as` on the
// local channel, or with a bearer token. JIT_URL, default http://127.0.0.1:3000. The local
// channel needs the secret of the running server's start, which it wrote to
// <JIT_DATA_DIR>/local-token (default data/local-token; readable by that user only).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { escapeControls } from './core/validate.js';

const base = (process.env.JIT_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`).replace(/\/+$/, '');
const USAGE = `usage:
  npm run jit -- as <principal> <command...>   e.g. as alice@contoso.com rdp vm1 2h from 203.0.113.7
  npm run jit -- rules                         show the simulated network rules
  npm run jit -- audit [<request id>]          show the audit log
  npm run jit -- login                         print a fresh login link for the web console`;

/** The local channel's secret header, read from the token file the server wrote at start. */
function localToken(): Record<string, string> {
  const file = join(process.env.JIT_DATA_DIR ?? 'data', 'local-token');
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch {
    throw new Error(`cannot read ${file}: the local channel needs the secret jit-bot writes there at start. Is it running here (npm start) with the same JIT_DATA_DIR and the local channel on? Or use JIT_API_TOKEN.`);
  }
  return { 'x-jit-local-token': token };
}

/** A call to the server, by default with the local channel's secret. */
async function call(path: string, init: RequestInit = {}, answered = false, auth: Record<string, string> = localToken()): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(base + path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } });
  } catch {
    throw new Error(`cannot reach jit-bot at ${base}; is it running (npm start)? Set JIT_URL if it runs elsewhere.`);
  }
  const body = (await res.json()) as { error?: string; text?: string };
  // A refused command still has its answer to print (`answered`); anything else is an error.
  if (!res.ok && !(answered && typeof body.text === 'string')) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * `as alice`, `as @alice`, `as ali`: the principal of the policy file whose name (the part before
 * the @) is that, or whose id it uniquely begins; an unknown name lists the principals there are.
 * Against a server that lists none (no local console), the name is sent as given.
 */
async function resolvePrincipal(name: string): Promise<string> {
  const want = name.trim().toLowerCase().replace(/^@/, '');
  const headers = localToken();
  let known: string[];
  try {
    const res = await fetch(`${base}/console/api/principals`, { headers });
    if (!res.ok) return want;
    known = ((await res.json()) as { principals: { id: string }[] }).principals.map((p) => p.id);
  } catch {
    throw new Error(`cannot reach jit-bot at ${base}; is it running (npm start)? Set JIT_URL if it runs elsewhere.`);
  }
  if (known.includes(want)) return want;
  const byName = known.filter((p) => p.split('@')[0] === want);
  if (byName.length === 1) return byName[0]!;
  const byPrefix = known.filter((p) => p.startsWith(want));
  if (byPrefix.length === 1) return byPrefix[0]!;
  const matches = byName.length > 1 ? byName : byPrefix;
  if (matches.length > 1) throw new Error(`"${name}" matches several principals: ${matches.join(', ')}; write one in full`);
  throw new Error(`unknown principal "${name}"; the policy file's principals are: ${known.join(', ') || '(none)'}`);
}

const safe = (v: unknown): string => escapeControls(String(v));

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === 'as' || (process.env.JIT_API_TOKEN && first && first !== 'rules' && first !== 'audit' && first !== 'login')) {
    const [principal, ...words] = first === 'as' ? rest : ['', first, ...rest];
    if (first === 'as' && !principal) throw new Error(USAGE);
    const auth: Record<string, string> = process.env.JIT_API_TOKEN ? { authorization: `Bearer ${process.env.JIT_API_TOKEN}` } : { 'x-jit-act-as': await resolvePrincipal(principal!), ...localToken() };
    const body = (await call('/api/v1/commands', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: words.join(' '), prefix: first === 'as' ? `npm run jit -- as ${principal}` : 'npm run jit --' }),
    }, true, auth)) as { text: string; reply: { kind: string } };
    process.stdout.write(escapeControls(body.text, true) + '\n');
    return body.reply.kind === 'rejected' ? 2 : 0;
  }
  if (first === 'login') {
    const { url } = (await call('/api/local/login-link', { method: 'POST' })) as { url: string };
    process.stdout.write(`Open this link in your browser (it works once): ${url}\n`);
    return 0;
  }
  if (first === 'rules') {
    const { rules } = (await call('/api/local/rules')) as {
      rules: { name: string; scope: string; priority: number; protocol: string; sourcePrefix: string; destinationPort: number; expiresAt: number }[];
    };
    if (rules.length === 0) process.stdout.write('No JIT rules are open.\n');
    for (const r of rules) {
      const nsg = r.scope.split('/').pop();
      process.stdout.write(`${safe(nsg)}  ${String(r.priority).padStart(4)}  Allow Inbound ${safe(r.protocol)}/${safe(r.destinationPort)} from ${safe(r.sourcePrefix)}  ${safe(r.name)}  expires ${iso(r.expiresAt)}\n`);
    }
    return 0;
  }
  if (first === 'audit') {
    const q = rest[0] ? `?request=${encodeURIComponent(rest[0])}` : '';
    const { events } = (await call(`/api/local/audit${q}`)) as {
      events: { time: number; actor: string; action: string; requestId: string; target: string; details: Record<string, unknown> }[];
    };
    for (const e of events) {
      const details = Object.entries(e.details)
        .filter(([, v]) => v !== null && v !== '')
        .map(([k, v]) => `${safe(k)}=${safe(v)}`)
        .join(' ');
      process.stdout.write(`${iso(e.time)}  ${safe(e.requestId)}  ${safe(e.action).padEnd(24)} ${safe(e.actor).padEnd(20)} ${safe(e.target)}  ${details}\n`);
    }
    return 0;
  }
  process.stdout.write(USAGE + '\n');
  return first ? 2 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
