import { describe, expect, it } from 'vitest';
import { ChannelPoster } from '../../src/app/chat/poster.js';

describe('audit channel poster', () => {
  it('posts the first line at once, batches what arrives while waiting, keeps order, one message per interval per channel', async () => {
    const posts: Array<{ channel: string; text: string; at: number }> = [];
    const p = new ChannelPoster(async (channel, text) => void posts.push({ channel, text, at: Date.now() }), 150, () => {});
    for (let i = 1; i <= 5; i++) p.enqueue('C1', `line ${i}`);
    p.enqueue('C2', 'other');
    await p.flush();
    expect(posts.filter((x) => x.channel === 'C1').map((x) => x.text)).toEqual(['line 1', 'line 2\nline 3\nline 4\nline 5']);
    const c1 = posts.filter((x) => x.channel === 'C1');
    expect(c1[1]!.at - c1[0]!.at).toBeGreaterThanOrEqual(140);
    expect(posts.find((x) => x.channel === 'C2')!.text).toBe('other');
  });

  it('retries a failed post and drops nothing that eventually goes through', async () => {
    let fails = 2;
    const texts: string[] = [];
    const p = new ChannelPoster(
      async (_c, text) => {
        if (fails-- > 0) throw new Error('503');
        texts.push(text);
      },
      0,
      () => {},
      async () => {},
    );
    p.enqueue('C1', 'a');
    p.enqueue('C1', 'b');
    await p.flush();
    expect(texts.join('\n').split('\n')).toEqual(['a', 'b']);
  });

  it('reports lines it gives up on instead of losing them silently', async () => {
    const given: string[][] = [];
    const p = new ChannelPoster(async () => { throw new Error('channel_not_found'); }, 0, (_c, _e, lines) => void given.push(lines), async () => {});
    p.enqueue('C404', 'x');
    await p.flush();
    expect(given).toEqual([['x']]);
    expect(p.pending()).toBe(0);
  });

  it('splits very long batches into messages under Slack\'s text limit', async () => {
    const texts: string[] = [];
    const p = new ChannelPoster(async (_c, t) => void texts.push(t), 0, () => {}, async () => {});
    const long = 'y'.repeat(1000);
    for (let i = 0; i < 10; i++) p.enqueue('C1', `${i}${long}`);
    await p.flush();
    expect(texts.every((t) => t.length <= 3500)).toBe(true);
    expect(texts.join('\n').split('\n').map((l) => l[0])).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });
});
