// The console's markdown processor for Adaptive Card text (AdaptiveCard.onProcessMarkdown): the
// subset Teams renders in TextBlock and Fact text (bold, italic, lists, links, backslash escapes;
// no strike-through), nothing else; raw HTML is never passed through. Emoji the bot writes become small
// inline icons, so a system without an emoji font shows a mark rather than an empty box.
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt('zero', { html: false, linkify: false, typographer: false });
md.enable(['paragraph', 'list', 'newline', 'escape', 'emphasis', 'link', 'text']);

/** The emoji the cards use, as the icon class and the label a screen reader says. */
export const ICONS: Record<string, { cls: string; label: string }> = {
  '✅': { cls: 'ok', label: 'approved' },
  '❌': { cls: 'no', label: 'denied' },
  '⏫': { cls: 'up', label: 'escalated' },
  '🔓': { cls: 'open', label: 'open' },
  '🔒': { cls: 'locked', label: 'closed' },
  '⌛': { cls: 'time', label: 'timed out' },
  '⏳': { cls: 'time', label: 'closing soon' },
  '⚠️': { cls: 'warn', label: 'warning' },
  '⚠': { cls: 'warn', label: 'warning' },
};
const ICON_RE = new RegExp(Object.keys(ICONS).sort((a, b) => b.length - a.length).join('|'), 'gu');

/** Card markdown to HTML (safe to assign to innerHTML: markdown-it escapes everything else). */
export function cardMarkdown(text: string): string {
  return md.render(text).replace(ICON_RE, (e) => {
    const icon = ICONS[e]!;
    return `<span class="ico ico-${icon.cls}" role="img" aria-label="${icon.label}"></span>`;
  });
}
