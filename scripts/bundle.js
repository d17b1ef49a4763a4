// The bundles that `npm start` (bin/jit-bot) and the CLI (bin/jit) run, so that neither compiles
// TypeScript when it starts: src/main.ts and src/cli.ts bundled by esbuild into dist/ (npm packages
// stay external, loaded from node_modules as usual). Plain JavaScript: it runs before anything
// is compiled.
//
//   node scripts/bundle.js          build what is stale (`npm install` / `npm ci` run it: `prepare`)
//   node scripts/bundle.js --check  exit 0 if both bundles are fresh, 1 if one is stale
//
// A bundle is fresh when every file it was built from (esbuild's list of inputs: the sources it
// bundled, the card templates, the console page's script and its packages; plus package.json,
// tsconfig.json and this file) still has the SHA-256 it had at build time, and the bundle still has
// its own. The launchers check that on every start (about 10 ms for the server, 1 ms for the CLI)
// and rebuild a stale bundle (0.3–1 s on 2 cores) before running it: an edit of src/ is never run
// stale.
//
// Builds are safe to run at once (two replicas started together): each writes its bundle under a
// temporary name and renames it into place, then its record of inputs the same way, so a reader
// sees a whole bundle, and a record that does not match the bundle beside it counts as stale.
import { createHash } from 'node:crypto';
import { createRequire, isBuiltin } from 'node:module';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
/** Inputs of every bundle besides esbuild's list: what changes how the sources are built. */
const ALWAYS = ['package.json', 'tsconfig.json', 'scripts/bundle.js'];

/** @typedef {'main' | 'cli'} Entry */
/** @typedef {{ inputs: Record<string, string>, outputs: Record<string, string> }} BuildRecord */

/** @type {Record<Entry, string>} */
export const ENTRIES = { main: 'src/main.ts', cli: 'src/cli.ts' };

const sha = (/** @type {Buffer | string} */ data) => createHash('sha256').update(data).digest('base64url');
const recordFile = (/** @type {Entry} */ entry) => join(DIST, `${entry}.build.json`);
export const bundleFile = (/** @type {Entry} */ entry) => join(DIST, `${entry}.js`);
/** A path as the records spell it: relative to the checkout, with forward slashes. */
const rel = (/** @type {string} */ path) => relative(ROOT, path).split(sep).join('/');

/** Hash of a file under ROOT, or null when it is gone. */
function hashOf(/** @type {string} */ file) {
  try {
    return sha(readFileSync(join(ROOT, file)));
  } catch {
    return null;
  }
}

/** Whether dist/<entry>.js was built from the files as they are now. */
export function isFresh(/** @type {Entry} */ entry) {
  /** @type {BuildRecord} */
  let record;
  try {
    record = JSON.parse(readFileSync(recordFile(entry), 'utf8'));
  } catch {
    return false;
  }
  if (typeof record?.inputs !== 'object' || typeof record.outputs !== 'object') return false;
  for (const [file, hash] of [...Object.entries(record.inputs), ...Object.entries(record.outputs)]) if (hashOf(file) !== hash) return false;
  return Object.keys(record.outputs).includes(rel(bundleFile(entry)));
}

/**
 * esbuild plugin: the npm packages the sources `import` are loaded with require() where they can
 * be. Node imports a CommonJS package into an ES module by scanning its source for the names it
 * exports, and every file it re-exports, with a lexer (190 ms of a 1,030 ms start-up profile, for
 * bullmq, ioredis, pino, prom-client, zod and yaml); require() skips that scan. It also keeps lazy
 * what the sources load lazily: a module behind `await import()` (Slack, Teams, Azure, the
 * console) runs its require() calls when it is first imported, whereas an `import` of a package
 * would be hoisted to the top of the bundle and load at start. An ES-module-only package (none
 * today) stays an import, so it would load at start.
 * @type {import('esbuild').Plugin}
 */
const requirePackages = {
  name: 'require-packages',
  setup(b) {
    const resolver = createRequire(join(ROOT, 'package.json'));
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.namespace === 'require-package') return { path: args.path, external: true };
      if (args.kind !== 'import-statement' || isBuiltin(args.path)) return undefined;
      try {
        resolver.resolve(args.path);
      } catch {
        return undefined;
      }
      return { path: args.path, namespace: 'require-package' };
    });
    b.onLoad({ filter: /.*/, namespace: 'require-package' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/** Writes a file under a temporary name, then renames it into place (readers see all or nothing). */
function writeAtomic(/** @type {string} */ path, /** @type {string | Uint8Array} */ data) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * Builds dist/<entry>.js from its sources and records its inputs. The server's bundle carries the
 * console page's script (src/adapters/console/web/app.ts, built for browsers as the server
 * builds it when it runs from source) as the constant __JIT_CONSOLE_APP_JS__.
 */
export async function build(/** @type {Entry} */ entry) {
  const esbuild = await import('esbuild');
  /** @type {Record<string, string>} */
  const inputs = {};
  /** @type {Record<string, string>} */
  let define = {};
  if (entry === 'main') {
    const web = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: ['src/adapters/console/web/app.ts'],
      bundle: true,
      write: false,
      format: 'iife',
      target: 'es2020',
      minify: true,
      metafile: true,
      logLevel: 'error',
    });
    for (const file of Object.keys(web.metafile.inputs)) inputs[file] = '';
    define = { __JIT_CONSOLE_APP_JS__: JSON.stringify(/** @type {import('esbuild').OutputFile} */ (web.outputFiles[0]).text) };
  }
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: { [entry]: ENTRIES[entry] },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: bundleFile(entry),
    define,
    plugins: [requirePackages],
    // `require` for the packages loaded with it (resolved from the bundle's own place, as Node would).
    banner: {
      js: `// Built from ${ENTRIES[entry]} by scripts/bundle.js; do not edit (edit src/, the next start rebuilds it).\nimport { createRequire as __jitCreateRequire } from 'node:module';\nconst require = __jitCreateRequire(import.meta.url);`,
    },
    write: false,
    metafile: true,
    logLevel: 'error',
  });
  // (The plugin's stand-ins, `require-package:<name>`, are no files.)
  for (const file of [...Object.keys(result.metafile.inputs), ...ALWAYS]) if (!file.startsWith('require-package:')) inputs[file] = '';
  for (const file of Object.keys(inputs)) {
    const hash = hashOf(file);
    if (hash === null) throw new Error(`${file} vanished while building`);
    inputs[file] = hash;
  }
  /** @type {Record<string, string>} */
  const outputs = {};
  // The bundle first, its record last (a record never describes a bundle not yet in place).
  for (const f of result.outputFiles) {
    writeAtomic(f.path, f.contents);
    outputs[rel(f.path)] = sha(f.contents);
  }
  writeAtomic(recordFile(entry), JSON.stringify({ inputs, outputs }, null, 1) + '\n');
  return bundleFile(entry);
}

/** @typedef {(ms: number, why: 'missing' | 'stale') => void} OnBuild */

/** dist/<entry>.js, built first if it is missing or stale; `onBuild` hears of a build. */
export async function ensure(/** @type {Entry} */ entry, /** @type {OnBuild} */ onBuild = () => {}) {
  if (isFresh(entry)) return bundleFile(entry);
  const why = existsSync(recordFile(entry)) ? 'stale' : 'missing';
  const t0 = performance.now();
  const file = await build(entry);
  onBuild(performance.now() - t0, why);
  return file;
}

/**
 * What bin/jit and bin/jit-bot do: run dist/<entry>.js, rebuilt first when stale. A source that
 * does not build stops here with esbuild's message (never the old bundle).
 */
export async function run(/** @type {Entry} */ entry, /** @type {OnBuild} */ onBuild = () => {}) {
  let file;
  try {
    file = await ensure(entry, onBuild);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`cannot build ${ENTRIES[entry]} into dist/ (scripts/bundle.js): ${msg}\n`);
    process.exit(1);
  }
  await import(pathToFileURL(file).href);
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const entries = /** @type {Entry[]} */ (Object.keys(ENTRIES));
  if (process.argv.includes('--check')) {
    const stale = entries.filter((e) => !isFresh(e));
    for (const e of stale) process.stderr.write(`dist/${e}.js is stale or missing\n`);
    process.exit(stale.length ? 1 : 0);
  }
  try {
    for (const entry of entries) await ensure(entry, (ms) => process.stdout.write(`built dist/${entry}.js from ${ENTRIES[entry]} in ${Math.round(ms)} ms\n`));
  } catch (err) {
    process.stderr.write(`scripts/bundle.js: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
