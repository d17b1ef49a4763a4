// The privacy and terms pages the Teams app manifest links to (developer.privacyUrl /
// termsOfUseUrl): the links of a package built for this server answer 200 with the configured text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillManifest } from '../../scripts/teams-package.js';
import { DEFAULT_TERMS_TEXT } from '../../src/server.js';
import { startHarness, type Harness } from './harness.js';

const APP = '00000000-0000-4000-8000-0000000000a1';
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ JIT_PRIVACY_TEXT: 'Contoso IT keeps <request> records for 90 days.\n\nQuestions: it@contoso.com' });
});

afterAll(async () => {
  await h?.close();
});

describe('privacy and terms pages', () => {
  it('the manifest links of a package built for this server open pages with the configured text, escaped', async () => {
    const dev = fillManifest(APP, h.app.url).developer as { privacyUrl: string; termsOfUseUrl: string };
    const privacy = await fetch(dev.privacyUrl);
    expect(privacy.status).toBe(200);
    expect(privacy.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await privacy.text();
    expect(html).toContain('<p>Contoso IT keeps &lt;request&gt; records for 90 days.</p>');
    expect(html).toContain('<p>Questions: it@contoso.com</p>');
    expect(html).not.toContain('<request>');

    const terms = await fetch(dev.termsOfUseUrl);
    expect(terms.status).toBe(200);
    expect(await terms.text()).toContain(DEFAULT_TERMS_TEXT.split('\n')[0]!.slice(0, 60));
  });

  it('answers GET and HEAD only', async () => {
    expect((await fetch(`${h.app.url}/privacy`, { method: 'HEAD' })).status).toBe(200);
    const post = await fetch(`${h.app.url}/terms`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});
