// The Teams app package: the manifest inside the built zip is valid against Microsoft's official
// schema for its version (MicrosoftTeams.schema.json v1.17 as shipped in @microsoft/app-manifest,
// checked with that package's validator), icons as Teams requires, and a zip that unzip can read.
// No network.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../scripts/binfmt.js';
import { buildPackage, fillManifest, officialSchemaPath, validateManifest } from '../../scripts/teams-package.js';

const APP = '00000000-0000-4000-8000-0000000000a1';

function pngInfo(file: string) {
  const b = readFileSync(file);
  expect(b.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  const colorType = b[25];
  // Gather IDAT chunks and decode the (unfiltered) RGBA rows.
  const idat: Buffer[] = [];
  for (let off = 8; off < b.length; ) {
    const len = b.readUInt32BE(off);
    const type = b.subarray(off + 4, off + 8).toString('ascii');
    if (type === 'IDAT') idat.push(b.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const pixels: number[][] = [];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) pixels.push([...raw.subarray(y * (width * 4 + 1) + 1 + x * 4, y * (width * 4 + 1) + 5 + x * 4)]);
  return { width, height, colorType, pixels };
}

/** The entries of a zip (central directory → local headers → inflate), each checked against its CRC-32. */
function unzip(b: Buffer): Map<string, Buffer> {
  let eocd = -1;
  for (let i = b.length - 22; i >= 0; i--) {
    if (b.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  expect(eocd).toBeGreaterThanOrEqual(0);
  const count = b.readUInt16LE(eocd + 10);
  const out = new Map<string, Buffer>();
  for (let i = 0, off = b.readUInt32LE(eocd + 16); i < count; i++) {
    expect(b.readUInt32LE(off)).toBe(0x02014b50);
    const method = b.readUInt16LE(off + 10);
    const crc = b.readUInt32LE(off + 16);
    const packed = b.readUInt32LE(off + 20);
    const nameLen = b.readUInt16LE(off + 28);
    const extraLen = b.readUInt16LE(off + 30);
    const commentLen = b.readUInt16LE(off + 32);
    const local = b.readUInt32LE(off + 42);
    const name = b.subarray(off + 46, off + 46 + nameLen).toString('utf8');
    expect(b.readUInt32LE(local)).toBe(0x04034b50);
    const start = local + 30 + b.readUInt16LE(local + 26) + b.readUInt16LE(local + 28);
    const raw = b.subarray(start, start + packed);
    const data = method === 8 ? inflateRawSync(raw) : Buffer.from(raw);
    expect(crc32(data)).toBe(crc);
    out.set(name, data);
    off += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

describe('Teams app package', () => {
  it('the manifest inside the built zip is valid against Microsoft\'s official v1.17 schema, bot in personal scope (needed to DM requesters)', async () => {
    expect(officialSchemaPath('1.17')).toMatch(/@microsoft[\\/]app-manifest[\\/]build[\\/]json-schemas[\\/]teams[\\/]v1\.17[\\/]MicrosoftTeams\.schema\.json$/);
    const files = unzip(await buildPackage(APP, 'https://jit.contoso.com'));
    expect([...files.keys()].sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
    const m = JSON.parse(files.get('manifest.json')!.toString('utf8')) as Record<string, unknown>;
    expect(await validateManifest(m)).toEqual([]);
    expect(m.manifestVersion).toBe('1.17');
    expect(m.id).toBe(APP);
    const bots = m.bots as Array<{ botId: string; scopes: string[]; commandLists: Array<{ scopes: string[] }> }>;
    expect(bots[0]!.botId).toBe(APP);
    // Scopes are case-sensitive: groupChat, not groupchat.
    expect(bots[0]!.scopes).toEqual(['personal', 'team', 'groupChat']);
    // One command list per scope, as the schema advises.
    expect(bots[0]!.commandLists.map((l) => l.scopes)).toEqual([['personal'], ['team'], ['groupChat']]);
    // The personal list offers the request form and the home card (issue 20).
    const personal = (bots[0]!.commandLists[0] as unknown as { commands: Array<{ title: string }> }).commands.map((c) => c.title);
    expect(personal).toEqual(expect.arrayContaining(['request', 'home']));
    expect(JSON.stringify(m)).not.toContain('${{');
  });

  it('the official check is real: it refuses the old lower-case "groupchat" scope, a bad id, an unknown member, a long short name, too many commands, a link without a scheme', async () => {
    const m = fillManifest(APP, 'https://jit.contoso.com');
    const bots = m.bots as Array<Record<string, unknown>>;
    const lowerCase = { ...m, bots: [{ ...bots[0], scopes: ['personal', 'team', 'groupchat'] }] };
    expect((await validateManifest(lowerCase)).join()).toMatch(/\/bots\/0\/scopes\/2 must be equal to one of the allowed values.*groupChat/);
    expect((await validateManifest({ ...m, id: 'not-a-guid' })).join()).toMatch(/\/id/);
    expect((await validateManifest({ ...m, webApplicationInfoo: {} })).join()).toMatch(/webApplicationInfoo/);
    expect((await validateManifest({ ...m, name: { short: 'x'.repeat(31) } })).join()).toMatch(/\/name\/short/);
    const eleven = Array.from({ length: 11 }, (_, i) => ({ title: `c${i}`, description: 'x' }));
    const tooMany = { ...m, bots: [{ ...bots[0], commandLists: [{ scopes: ['personal'], commands: eleven }] }] };
    expect((await validateManifest(tooMany)).join()).toMatch(/\/bots\/0\/commandLists\/0\/commands must NOT have more than 10 items/);
    expect((await validateManifest(fillManifest(APP, 'https://jit.contoso.com', { privacyUrl: 'jit.contoso.com/privacy' }))).join()).toMatch(/\/developer\/privacyUrl/);
    expect((await validateManifest({ ...m, manifestVersion: '0.9' })).join()).toMatch(/no official schema/);
    expect((await validateManifest(fillManifest('${{MICROSOFT_APP_ID}}', 'https://jit.contoso.com'))).length).toBeGreaterThan(0);
  });

  it('privacy and terms links: jit-bot\'s own /privacy and /terms by default, or the configured addresses', () => {
    const dev = (m: Record<string, unknown>) => m.developer as { privacyUrl: string; termsOfUseUrl: string; websiteUrl: string };
    expect(dev(fillManifest(APP, 'https://jit.contoso.com/'))).toMatchObject({ websiteUrl: 'https://jit.contoso.com/', privacyUrl: 'https://jit.contoso.com/privacy', termsOfUseUrl: 'https://jit.contoso.com/terms' });
    expect(dev(fillManifest(APP, 'https://jit.contoso.com', { privacyUrl: 'https://contoso.com/privacy', termsUrl: 'https://contoso.com/it-terms' }))).toMatchObject({
      privacyUrl: 'https://contoso.com/privacy',
      termsOfUseUrl: 'https://contoso.com/it-terms',
    });
  });

  it('icons: colour 192x192, outline 32x32 white on transparent', () => {
    const color = pngInfo('manifest/teams/color.png');
    expect([color.width, color.height, color.colorType]).toEqual([192, 192, 6]);
    const outline = pngInfo('manifest/teams/outline.png');
    expect([outline.width, outline.height]).toEqual([32, 32]);
    for (const [r, g, b, a] of outline.pixels) expect(a === 0 || (r === 255 && g === 255 && b === 255)).toBe(true);
    expect(outline.pixels.some((p) => p[3] === 0)).toBe(true);
  });

  it('the zip holds manifest.json and both icons, readable by unzip', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teams-pkg-'));
    const file = join(dir, 'pkg.zip');
    writeFileSync(file, await buildPackage(APP, 'https://jit.contoso.com'));
    let listing: string;
    try {
      listing = execFileSync('unzip', ['-l', file], { encoding: 'utf8' });
    } catch {
      // No unzip binary: read the central directory ourselves.
      const b = readFileSync(file);
      listing = ['manifest.json', 'color.png', 'outline.png'].filter((n) => b.includes(Buffer.from(n))).join(' ');
    }
    for (const name of ['manifest.json', 'color.png', 'outline.png']) expect(listing).toContain(name);
    if (/Archive:/.test(listing)) {
      const manifest = JSON.parse(execFileSync('unzip', ['-p', file, 'manifest.json'], { encoding: 'utf8' })) as { id: string };
      expect(manifest.id).toBe(APP);
    }
  });

  it('refuses to build a package from an invalid manifest', async () => {
    await expect(buildPackage('nope', 'https://jit.contoso.com')).rejects.toThrow(/not valid/);
  });
});
