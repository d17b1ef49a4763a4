// `npm run teams:package`: fills the bot's app id (MICROSOFT_APP_ID), public address (PUBLIC_URL)
// and the privacy / terms links (TEAMS_PRIVACY_URL / TEAMS_TERMS_URL; default the pages jit-bot
// serves at PUBLIC_URL/privacy and PUBLIC_URL/terms) into manifest/teams/manifest.json, validates
// it against Microsoft's official schema for its manifest version (the JSON schemas shipped in
// @microsoft/app-manifest, with its validator) and writes dist/teams/jit-bot-teams.zip
// (manifest.json, color.png, outline.png) to upload in Teams (Apps → Manage your apps → Upload an
// app) or in the Teams admin center.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManifestUtil, type TeamsAppManifest } from '@microsoft/app-manifest';
import { zip } from './binfmt.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'manifest', 'teams');

export interface ManifestLinks {
  /** developer.privacyUrl; default `${publicUrl}/privacy` (served by jit-bot). */
  privacyUrl?: string;
  /** developer.termsOfUseUrl; default `${publicUrl}/terms` (served by jit-bot). */
  termsUrl?: string;
}

export function fillManifest(appId: string, publicUrl: string, links: ManifestLinks = {}): Record<string, unknown> {
  const base = publicUrl.replace(/\/+$/, '');
  const text = readFileSync(join(dir, 'manifest.json'), 'utf8')
    .replaceAll('${{MICROSOFT_APP_ID}}', appId)
    .replaceAll('${{PRIVACY_URL}}', links.privacyUrl ?? `${base}/privacy`)
    .replaceAll('${{TERMS_URL}}', links.termsUrl ?? `${base}/terms`)
    .replaceAll('${{PUBLIC_URL}}', base);
  return JSON.parse(text) as Record<string, unknown>;
}

type ManifestSchema = Parameters<typeof ManifestUtil.validateManifestAgainstSchema<TeamsAppManifest>>[1];

/** Microsoft's MicrosoftTeams.schema.json for a manifest version, as @microsoft/app-manifest ships it. */
export function officialSchemaPath(manifestVersion: string): string {
  const pkg = dirname(createRequire(import.meta.url).resolve('@microsoft/app-manifest/package.json'));
  return join(pkg, 'build', 'json-schemas', 'teams', `v${manifestVersion}`, 'MicrosoftTeams.schema.json');
}

/** The problems Microsoft's validator finds (empty when the manifest is valid). */
export async function validateManifest(manifest: Record<string, unknown>): Promise<string[]> {
  const version = typeof manifest.manifestVersion === 'string' ? manifest.manifestVersion : '';
  const file = officialSchemaPath(version);
  if (!/^\d+\.\d+$/.test(version) || !existsSync(file)) return [`/manifestVersion: no official schema for "${version}"`];
  const schema = JSON.parse(readFileSync(file, 'utf8')) as ManifestSchema;
  const problems = await ManifestUtil.validateManifestAgainstSchema(manifest as unknown as TeamsAppManifest, schema);
  const url = `https://developer.microsoft.com/en-us/json-schemas/teams/v${version}/MicrosoftTeams.schema.json`;
  if (manifest.$schema !== url) problems.push(`/$schema must be ${url} (the manifestVersion's schema)`);
  return problems;
}

export async function buildPackage(appId: string, publicUrl: string, links: ManifestLinks = {}): Promise<Buffer> {
  const manifest = fillManifest(appId, publicUrl, links);
  const problems = await validateManifest(manifest);
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
  const links: ManifestLinks = {
    ...(process.env.TEAMS_PRIVACY_URL ? { privacyUrl: process.env.TEAMS_PRIVACY_URL } : {}),
    ...(process.env.TEAMS_TERMS_URL ? { termsUrl: process.env.TEAMS_TERMS_URL } : {}),
  };
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
    writeFileSync(out, await buildPackage(appId, publicUrl, links));
    process.stdout.write(`wrote ${out}\n`);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
