// Generates manifest/teams/color.png (192x192, full colour) and outline.png (32x32, white on
// transparent), as Teams requires. Run once: npx tsx scripts/teams-icons.ts
import { writeFileSync } from 'node:fs';
import { png } from './binfmt.js';

// A padlock: body and shackle. Colour icon: white lock on the accent colour.
function lock(x: number, y: number, size: number): boolean {
  const u = x / size;
  const v = y / size;
  const body = u >= 0.25 && u <= 0.75 && v >= 0.45 && v <= 0.8;
  const dx = u - 0.5;
  const dy = v - 0.45;
  const r = Math.sqrt(dx * dx + dy * dy);
  const shackle = dy <= 0 && r >= 0.13 && r <= 0.19;
  const legs = v > 0.4 && v < 0.46 && ((u >= 0.31 && u <= 0.37) || (u >= 0.63 && u <= 0.69));
  return body || shackle || legs;
}

writeFileSync('manifest/teams/color.png', png(192, 192, (x, y) => (lock(x, y, 192) ? [255, 255, 255, 255] : [0x1d, 0x3b, 0x53, 255])));
writeFileSync('manifest/teams/outline.png', png(32, 32, (x, y) => (lock(x, y, 32) ? [255, 255, 255, 255] : [0, 0, 0, 0])));
