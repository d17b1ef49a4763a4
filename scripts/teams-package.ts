// `npm run teams:package`: fills the bot's app id (MICROSOFT_APP_ID) and public address
// (PUBLIC_URL) into manifest/teams/manifest.json, validates it against the bundled schema and
// writes dist/teams/jit-bot-teams.zip (manifest.json, color.png, outline.png) to upload in
// Teams (Apps → Manage your apps → Upload an app) or in the Teams admin center.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { zip } from './binfmt.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'manifest', 'teams');

export function fillManifest(appId: string, publicUrl: string): Record<string, unknown> {
  const text = readFileSync(join(dir, 'manifest.json'), 'utf8')
    .replaceAll('${{MICROSOFT_APP_ID}}', appId)
    .replaceAll('${{PUBLIC_URL}}', publicUrl.replace(/\/+$/, ''));
  return JSON.parse(text) as Record<string, unknown>;
}

export function validateManifest(manifest: unknown): string[] {
  const schema = JSON.parse(readFileSync(join(dir, 'manifest.schema.json'), 'utf8')) as object;
  const ajv = new Ajv({ allErrors: true, strict: true, validateFormats: false });
  const validate = ajv.compile(schema);
  if (validate(manifest)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
}

export function buildPackage(appId: string, publicUrl: string): Buffer {
  const manifest = fillManifest(appId, publicUrl);
  const problems = validateManifest(manifest);
  if (problems.length) throw new Error(`manifest/teams/manifest.json is not valid:\n  ${problems.join('\n  ')}`);
  return zip([
    { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest, null, 2)) },
    { name: 'color.png', data: readFileSync(join(dir, 'color.png')) },
    { name: 'outline.png', data: readFileSync(join(dir, 'outline.png')) },
  ]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const appId = process.env.MICROSOFT_APP_ID ?? '';
  const publicUrl = process.env.PUBLIC_URL ?? '';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(appId)) {
    process.stderr.write('MICROSOFT_APP_ID: set it to the bot\'s Microsoft App ID (a GUID) to build the Teams package\n');
    process.exit(1);
  }
  if (!/^https:\/\//.test(publicUrl)) {
    process.stderr.write('PUBLIC_URL: set it to the https address jit-bot is reachable at (the manifest links to it)\n');
    process.exit(1);
  }
  try {
    const out = join(root, 'dist', 'teams', 'jit-bot-teams.zip');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, buildPackage(appId, publicUrl));
    process.stdout.write(`wrote ${out}\n`);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
