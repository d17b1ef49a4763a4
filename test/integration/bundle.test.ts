// The launchers from a fresh checkout (no dist/, as after a clone): bin/jit (the CLI) and
// bin/jit-bot (what `npm start` runs) build their bundles with scripts/bundle.js, run them without
// compiling TypeScript, and never run a bundle older than the sources; `npm run prepare` (what
// `npm install` and `npm ci` run) builds both. Each test works on a copy of the checkout in a temp
// dir (its node_modules linked to this one's), so it can delete dist/ and edit sources.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeSlack, sendSigned, slashBody } from '../fakes/slack.js';
import { REDIS_URL, deleteKeys, freePort, startHarness, waitFor, type Harness } from './harness.js';

const ROOT = resolve('.');
let copy: string;
let h: Harness;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in the copy (an executable such as bin/jit is run as a user runs it: by its shebang). */
function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: copy, env: { ...process.env, JIT_API_TOKEN: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

const jit = (...args: string[]) => run('bin/jit', args, { JIT_URL: h.app.url, JIT_DATA_DIR: h.dir });
const check = () => run(process.execPath, ['scripts/bundle.js', '--check']);
const edit = (file: string, from: string, to: string) => {
  const path = join(copy, file);
  const text = readFileSync(path, 'utf8');
  expect(text).toContain(from);
  writeFileSync(path, text.replace(from, to));
};

beforeAll(async () => {
  copy = mkdtempSync(join(tmpdir(), 'jit-checkout-'));
  for (const entry of ['src', 'bin', 'scripts', 'cards', 'config', 'package.json', 'tsconfig.json']) cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  h = await startHarness({ JIT_MIN_DURATION: '5m' });
});

afterAll(async () => {
  await h?.close();
  if (copy) rmSync(copy, { recursive: true, force: true });
});

describe('bin/jit and npm start from a checkout with no dist/', () => {
  it('bin/jit builds its bundle on first use, runs it against the server, and does not rebuild a fresh one', async () => {
    expect(existsSync(join(copy, 'dist'))).toBe(false);
    expect((await check()).code).toBe(1);
    const help = await jit('help');
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('bin/jit as <principal> <command...>');
    expect(existsSync(join(copy, 'dist/cli.js'))).toBe(true);
    expect((await check()).code).toBe(1); // the server's bundle is still to build; the CLI's is not
    const built = statSync(join(copy, 'dist/cli.js')).mtimeMs;

    const { text } = await h.cmd('alice@contoso.com', 'ssh dev1 30m from 198.51.100.20');
    const id = /Request (r[0-9a-z]+)/.exec(text)?.[1];
    expect(id, text).toBeDefined();
    const status = await jit('as', 'alice', 'status', id!);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`${id}  active`);
    expect(status.stdout).toContain('connect: ssh');
    // A refusal's suggestion is spelled the way this CLI was run, so it works when pasted.
    const refused = await jit('as', 'alice', 'rdp', 'vm1', '99h', 'from', '203.0.113.7');
    expect(refused.code).toBe(2);
    expect(refused.stdout).toContain('try bin/jit as alice rdp vm1 3h from 203.0.113.7');
    const again = await jit('as', 'alice', 'rdp', 'vm1', '3h', 'from', '203.0.113.7');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('is waiting for approval');

    expect(statSync(join(copy, 'dist/cli.js')).mtimeMs).toBe(built);
  });

  it('an edit of the CLI or of a module it imports is never run stale: the next bin/jit rebuilds first', async () => {
    edit('src/cli.ts', 'show the audit log', 'show the audit log (edited)');
    const stale = await check();
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('dist/cli.js is stale');
    const help = await jit('help');
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('show the audit log (edited)');

    // Not the entry: src/core/validate.ts (escapeControls), which the CLI applies to what it prints.
    edit('src/core/validate.ts', 'return text.replace(new RegExp(CONTROL_RE.source', "return text.replace(/STALE-CHECK/g, 'rebuilt').replace(new RegExp(CONTROL_RE.source");
    const { text } = await h.cmd('alice@contoso.com', 'ssh dev1 30m from 198.51.100.20 reason "STALE-CHECK"');
    const id = /Request (r[0-9a-z]+)/.exec(text)![1]!;
    const audit = await jit('audit', id);
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toContain('justification=rebuilt');
  });

  it('a source that does not build stops bin/jit with esbuild\'s message; the old bundle is not run', async () => {
    const path = join(copy, 'src/cli.ts');
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, `${good}\nconst = ;\n`);
    try {
      const r = await jit('help');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('cannot build src/cli.ts');
      expect(r.stdout).not.toContain('usage');
    } finally {
      writeFileSync(path, good);
    }
    expect((await jit('help')).code).toBe(0);
  });

  it('npm start (bin/jit-bot) after an edit rebuilds dist/main.js, and the bundle serves the console, its script and the cards', async () => {
    // Built as `npm install` leaves it, then edited.
    const prepared = await run(process.execPath, ['scripts/bundle.js']);
    expect(prepared.stdout).toContain('built dist/main.js');
    expect((await check()).code).toBe(0);
    edit('src/main.ts', 'jit-bot is running at', 'jit-bot (edited) is running at');
    // The card templates are in the bundle too: an edit of one is an edit of the server.
    edit('cards/message.json', '"size": "Medium"', '"size": "ExtraLarge"');
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'jit-bundle-data-'));
    const prefix = `test-bundle-${Math.random().toString(36).slice(2, 8)}`;
    const child = spawn(process.execPath, ['bin/jit-bot'], {
      cwd: copy,
      env: { ...process.env, PORT: String(port), JIT_DATA_DIR: dataDir, JIT_KEY_PREFIX: prefix, REDIS_URL, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      await waitFor('the banner', async () => stderr.includes('is running at') || child.exitCode !== null, 30_000);
      expect(stderr).toMatch(/built dist\/main.js from src\/ in \d+ ms \(the sources changed since the last build\)/);
      expect(stderr).toContain(`jit-bot (edited) is running at http://127.0.0.1:${port}`);
      expect(stderr).toContain('bin/jit login');
      const url = `http://127.0.0.1:${port}`;
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const local = { 'x-jit-local-token': readFileSync(join(dataDir, 'local-token'), 'utf8').trim() };
      // The page's script, carried by the bundle (no src/adapters/console/web/app.ts beside dist/).
      const page = await fetch(`${url}/`, { headers: local });
      expect(page.status).toBe(200);
      const app = await fetch(`${url}/console/app.js`, { headers: local });
      expect(app.status).toBe(200);
      expect(app.headers.get('content-type')).toContain('javascript');
      const js = await app.text();
      expect(js).toContain('/console/api/state');
      // The same script the server builds for itself when it runs from source (console.ts).
      const fromSource = await build({ entryPoints: [join(copy, 'src/adapters/console/web/app.ts')], bundle: true, write: false, format: 'iife', target: 'es2020', minify: true, logLevel: 'silent' });
      expect(js).toBe(fromSource.outputFiles[0]!.text);
      // The card templates, carried by the bundle too.
      const answer = await fetch(`${url}/api/v1/commands`, {
        method: 'POST',
        headers: { ...local, 'x-jit-act-as': 'alice@contoso.com', 'content-type': 'application/json', accept: 'application/vnd.microsoft.card.adaptive+json' },
        body: JSON.stringify({ text: 'rdp vm1 30m from 203.0.113.9' }),
      });
      const body = (await answer.json()) as { text: string; card?: { type: string; body: unknown[] } };
      expect(body.text).toContain('is waiting for approval');
      expect(body.card?.type).toBe('AdaptiveCard');
      expect(JSON.stringify(body.card)).toContain('vm1');
      expect(JSON.stringify(body.card)).toContain('"size":"ExtraLarge"');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await deleteKeys(prefix);
      rmSync(dataDir, { recursive: true, force: true });
    }
    // Fresh now: a second start does not rebuild.
    expect((await check()).code).toBe(0);
  });

  it('with Slack configured, the bundle loads Bolt when it is needed and answers a signed /jit', async () => {
    const slack = await new FakeSlack({ U024ALICE: { email: 'alice@contoso.com' } }).start();
    const secret = 'bundle-test-signing-secret-0123456789';
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'jit-bundle-data-'));
    const prefix = `test-bundle-${Math.random().toString(36).slice(2, 8)}`;
    const child = spawn(process.execPath, ['bin/jit-bot'], {
      cwd: copy,
      env: { ...process.env, PORT: String(port), JIT_DATA_DIR: dataDir, JIT_KEY_PREFIX: prefix, REDIS_URL, LOG_LEVEL: 'warn', SLACK_SIGNING_SECRET: secret, SLACK_BOT_TOKEN: 'xoxb-bundle-test', SLACK_API_URL: slack.apiUrl },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      await waitFor('the banner', async () => stderr.includes('is running at') || child.exitCode !== null, 30_000);
      expect(stderr).toContain('is running at');
      const res = await sendSigned(`http://127.0.0.1:${port}`, slashBody('U024ALICE', 'help', slack.responseUrl('bundle-help')), { secret });
      expect(res.status).toBe(200);
      const reply = await waitFor('the answer on response_url', async () => slack.responses.find((r) => r.path === '/respond/bundle-help'));
      expect(JSON.stringify(reply.body)).toContain('/jit rdp');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await slack.close();
      await deleteKeys(prefix);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('two builds at once (replicas started together) both succeed and leave fresh bundles', async () => {
    edit('src/cli.ts', 'show the audit log (edited)', 'show the audit log (edited twice)');
    edit('src/main.ts', 'jit-bot (edited) is running at', 'jit-bot is running at');
    const [a, b] = await Promise.all([run(process.execPath, ['scripts/bundle.js']), run(process.execPath, ['scripts/bundle.js'])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect((await check()).code).toBe(0);
    expect((await jit('help')).stdout).toContain('(edited twice)');
    expect(readdirSync(join(copy, 'dist')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('npm run prepare (what npm install and npm ci run) builds both bundles', async () => {
    const pkg = JSON.parse(readFileSync(join(copy, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.prepare).toBe('node scripts/bundle.js');
    rmSync(join(copy, 'dist/main.js'));
    rmSync(join(copy, 'dist/cli.build.json'));
    const r = await run('npm', ['run', 'prepare']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('built dist/main.js from src/main.ts');
    expect(r.stdout).toContain('built dist/cli.js from src/cli.ts');
    expect((await check()).code).toBe(0);
    // Fresh: run again, nothing to build.
    const again = await run('npm', ['run', 'prepare']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toContain('built dist/');
  });
});
