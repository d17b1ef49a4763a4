// The local chat channel from a terminal (`bin/jit`, which runs this file's bundle dist/cli.js;
// `npm run jit -- …` and `npx jit …` run the same, slower to start):
//   bin/jit as alice@contoso.com rdp vm1 2h from 203.0.113.7
//   bin/jit as bob@contoso.com approve <id>
//   bin/jit rules            (the simulated NSG rules)
//   bin/jit audit [<id>]     (the audit log)
//   bin/jit login            (a fresh one-time login link for the web console)
//   JIT_API_TOKEN=jit_… bin/jit rdp vm1 2h   (as the token's principal, on any server)
// Commands go to the REST API (POST /api/v1/commands): as a principal named with `as` on the
// local channel, or with a bearer token. JIT_URL, default http://127.0.0.1:3000. The local
// channel needs the secret of the running server's start, which it wrote to
// <JIT_DATA_DIR>/local-token (default data/local-token; readable by that user only).
// Start-up time is most of a command's time: this file imports only Node's http (not fetch, whose
// first use costs ~0.15 s) and a pure helper, so a command takes about as long as `node -e 0`.
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { basename, delimiter, dirname, isAbsolute, join, relative } from 'node:path';

import { parsePrincipal } from './core/ids.js';
import { escapeControls } from './core/validate.js';

const base = (process.env.JIT_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`).replace(/\/+$/, '');

/**
 * How this command was typed, for the examples in answers and in the usage (each must work when
 * pasted): `npm run jit --`, `npx jit`, `jit` (on the PATH), or the launcher's path from here
 * (`bin/jit`). Run some other way (`node --import tsx src/cli.ts`): `npm run jit --`.
 */
function invokedAs(): string {
  // npm's variables reach every process under it: they count only when they name this command
  // (not, say, a test run under `npx vitest` that starts bin/jit).
  const { npm_lifecycle_event: event, npm_lifecycle_script: npmScript } = process.env;
  if (event === 'jit') return 'npm run jit --';
  if (event === 'npx' && /^'?jit'?$/.test(npmScript ?? '')) return 'npx jit';
  const file = process.argv[1] ?? '';
  if (basename(file) !== 'jit') return 'npm run jit --';
  if ((process.env.PATH ?? '').split(delimiter).includes(dirname(file))) return 'jit';
  const path = relative(process.cwd(), file);
  const typed = path.startsWith('..') || isAbsolute(path) ? file : path.includes('/') ? path : `./${path}`;
  // Long paths would crowd out `as <principal>` in the API's 100-character prefix.
  return typed.length <= 50 ? typed : 'jit';
}

const JIT = invokedAs();

/** The API's `prefix` (how examples in the answer start), left out where it would be over its 100 characters. */
const examplePrefix = (prefix: string): { prefix?: string } => (prefix.length <= 100 ? { prefix } : {});
const USAGE = `usage:
  ${JIT} as <principal> <command...>   e.g. as alice@contoso.com rdp vm1 2h from 203.0.113.7
  ${JIT} as <principal> help           the commands (what that principal may do)
  ${JIT} rules                         show the simulated network rules
  ${JIT} audit [<request id>]          show the audit log
  ${JIT} login                         print a fresh login link for the web console
  JIT_API_TOKEN=… ${JIT} <command...>  as the token's principal`;

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

const unreachable = () => new Error(`cannot reach jit-bot at ${base}; is it running (npm start)? Set JIT_URL if it runs elsewhere.`);

/** One HTTP exchange with the server: its status and its JSON answer (null when it sent none). */
async function exchange(path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; json: unknown }> {
  let url: URL;
  try {
    url = new URL(base + path);
  } catch {
    throw new Error(`JIT_URL is not a URL: ${base}`);
  }
  const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, { method: body === undefined ? 'GET' : 'POST', headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, resolve);
    req.on('error', () => reject(unreachable()));
    req.end(body);
  });
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of res) chunks.push(chunk as Buffer);
  } catch {
    throw unreachable();
  }
  let json: unknown = null;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    // not JSON: the caller says what it expected
  }
  return { status: res.statusCode ?? 0, json };
}

/** A call to the server, by default with the local channel's secret. */
async function call(path: string, init: { body?: string; headers?: Record<string, string> } = {}, answered = false, auth: Record<string, string> = localToken()): Promise<unknown> {
  const { status, json } = await exchange(path, { ...auth, ...init.headers }, init.body);
  const body = (json ?? {}) as { error?: string; text?: string };
  const ok = status >= 200 && status < 300;
  // A refused command still has its answer to print (`answered`); anything else is an error.
  if (!ok && !(answered && typeof body.text === 'string')) throw new Error(body.error ?? `HTTP ${status}`);
  if (json === null) throw new Error(`jit-bot at ${base} answered HTTP ${status} without JSON; is JIT_URL right?`);
  return body;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * `as alice`, `as @alice`, `as ali`: the principal of the policy file whose name (the part before
 * the @) is that, or whose id it uniquely begins; an unknown name lists the principals there are.
 * Against a server that lists none (no local console), the name is sent as given.
 */
async function resolvePrincipal(name: string): Promise<string> {
  // A search term (a name, the start of an id), or a whole principal (parsed as the server will).
  const want = name.trim().toLowerCase().replace(/^@/, '');
  const whole = parsePrincipal(want);
  const headers = localToken();
  const { status, json } = await exchange('/console/api/principals', headers);
  if (status !== 200 || json === null) return whole ?? want;
  const known = (json as { principals: { id: string }[] }).principals.flatMap((p) => parsePrincipal(p.id) ?? []);
  if (whole && known.includes(whole)) return whole;
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
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: words.join(' '), ...examplePrefix(first === 'as' ? `${JIT} as ${principal}` : JIT) }),
    }, true, auth)) as { text: string; reply: { kind: string } };
    process.stdout.write(escapeControls(body.text, true) + '\n');
    return body.reply.kind === 'rejected' ? 2 : 0;
  }
  if (first === 'login') {
    const { url } = (await call('/api/local/login-link', { body: '' })) as { url: string };
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
  // `help` (or nothing): the usage; anything else it does not know: the usage and exit code 2.
  process.stdout.write(USAGE + '\n');
  return first === undefined || first === 'help' || first === '--help' || first === '-h' ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
