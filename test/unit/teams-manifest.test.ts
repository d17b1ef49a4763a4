// The Teams app package: manifest valid against the bundled schema, icons as Teams requires,
// and a zip that unzip can read. No network.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildPackage, fillManifest, validateManifest } from '../../scripts/teams-package.js';

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

describe('Teams app package', () => {
  it('the filled manifest is valid against the schema, with the bot in personal scope (needed to DM requesters)', () => {
    const m = fillManifest(APP, 'https://jit.contoso.com');
    expect(validateManifest(m)).toEqual([]);
    expect(m.id).toBe(APP);
    const bots = m.bots as Array<{ botId: string; scopes: string[] }>;
    expect(bots[0]!.botId).toBe(APP);
    expect(bots[0]!.scopes).toContain('personal');
    expect(JSON.stringify(m)).not.toContain('${{');
  });

  it('the schema check is real: it refuses a bad id, an unknown member and a long short name', () => {
    const m = fillManifest(APP, 'https://jit.contoso.com');
    expect(validateManifest({ ...m, id: 'not-a-guid' }).join()).toMatch(/\/id/);
    expect(validateManifest({ ...m, webApplicationInfoo: {} }).join()).toMatch(/webApplicationInfoo/);
    expect(validateManifest({ ...m, name: { short: 'x'.repeat(31) } }).join()).toMatch(/\/name\/short/);
    expect(validateManifest(fillManifest('${{MICROSOFT_APP_ID}}', 'https://jit.contoso.com')).length).toBeGreaterThan(0);
  });

  it('icons: colour 192x192, outline 32x32 white on transparent', () => {
    const color = pngInfo('manifest/teams/color.png');
    expect([color.width, color.height, color.colorType]).toEqual([192, 192, 6]);
    const outline = pngInfo('manifest/teams/outline.png');
    expect([outline.width, outline.height]).toEqual([32, 32]);
    for (const [r, g, b, a] of outline.pixels) expect(a === 0 || (r === 255 && g === 255 && b === 255)).toBe(true);
    expect(outline.pixels.some((p) => p[3] === 0)).toBe(true);
  });

  it('the zip holds manifest.json and both icons, readable by unzip', () => {
    const dir = mkdtempSync(join(tmpdir(), 'teams-pkg-'));
    const file = join(dir, 'pkg.zip');
    writeFileSync(file, buildPackage(APP, 'https://jit.contoso.com'));
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

  it('refuses to build a package from an invalid manifest', () => {
    expect(() => buildPackage('nope', 'https://jit.contoso.com')).toThrow(/not valid/);
  });
});
