// What Slack refuses in the Block Kit jit-bot sends, written from Slack's Block Kit reference
// (docs.slack.dev/reference/block-kit: blocks, block elements, composition objects; the same
// limits are quoted in @slack/types 2.22.0's doc comments), independently of the limits
// src/adapters/slack/blocks.ts applies. Lengths count the string as sent (after `&amp;` escaping),
// in UTF-16 units. Each problem is phrased as Slack phrases its `errors` entries: a message and
// a JSON pointer to the offending value.
export type Surface = 'message' | 'modal' | 'home';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function blockKitProblems(blocks: unknown, surface: Surface = 'message'): string[] {
  const problems: string[] = [];
  const bad = (msg: string, at: string) => problems.push(`${msg} [json-pointer:${at}]`);

  const text = (t: unknown, at: string, opts: { max: number; plainOnly?: boolean }) => {
    if (!isObj(t)) return bad('must be a text object', at);
    if (t.type !== 'plain_text' && t.type !== 'mrkdwn') return bad('must be plain_text or mrkdwn', `${at}/type`);
    if (opts.plainOnly && t.type !== 'plain_text') bad('must be a plain_text object', `${at}/type`);
    if (typeof t.text !== 'string') return bad('must be a string', `${at}/text`);
    if (t.text.trim().length < 1) bad('must be more than 0 characters', `${at}/text`);
    if (t.text.length > opts.max) bad(`must be less than ${opts.max + 1} characters`, `${at}/text`);
  };

  const confirm = (c: unknown, at: string) => {
    if (!isObj(c)) return bad('must be an object', at);
    text(c.title, `${at}/title`, { max: 100, plainOnly: true });
    text(c.text, `${at}/text`, { max: 300 });
    text(c.confirm, `${at}/confirm`, { max: 30, plainOnly: true });
    text(c.deny, `${at}/deny`, { max: 30, plainOnly: true });
  };

  const element = (e: unknown, at: string, actionIds: Set<string>) => {
    if (!isObj(e)) return bad('must be an object', at);
    if (typeof e.action_id === 'string') {
      if (e.action_id.length > 255) bad('must be less than 256 characters', `${at}/action_id`);
      if (actionIds.has(e.action_id)) bad(`action_id "${e.action_id}" is already used in this block`, `${at}/action_id`);
      actionIds.add(e.action_id);
    }
    if (e.type === 'button') {
      text(e.text, `${at}/text`, { max: 75, plainOnly: true });
      if (e.value !== undefined && (typeof e.value !== 'string' || e.value.length > 2000)) bad('must be a string of less than 2001 characters', `${at}/value`);
      if (e.url !== undefined && (typeof e.url !== 'string' || e.url.length > 3000)) bad('must be a string of less than 3001 characters', `${at}/url`);
      if (e.style !== undefined && e.style !== 'primary' && e.style !== 'danger') bad('must be primary or danger', `${at}/style`);
      if (e.confirm !== undefined) confirm(e.confirm, `${at}/confirm`);
      return;
    }
    if (e.type === 'plain_text_input') {
      if (typeof e.max_length === 'number' && (e.max_length < 1 || e.max_length > 3000)) bad('must be 1-3000', `${at}/max_length`);
      if (e.placeholder !== undefined) text(e.placeholder, `${at}/placeholder`, { max: 150, plainOnly: true });
      if (e.initial_value !== undefined && (typeof e.initial_value !== 'string' || (typeof e.max_length === 'number' && e.initial_value.length > e.max_length))) bad('must be a string within max_length', `${at}/initial_value`);
      return;
    }
    // Option objects: text (plain_text in selects, either in radio buttons) up to 75, value up to 75
    // (docs.slack.dev/reference/block-kit/composition-objects/option-object), each value once.
    const option = (o: unknown, oat: string, plainOnly: boolean) => {
      if (!isObj(o)) return bad('must be an object', oat);
      text(o.text, `${oat}/text`, { max: 75, plainOnly });
      if (typeof o.value !== 'string' || o.value.length < 1 || o.value.length > 75) bad('must be a string of 1-75 characters', `${oat}/value`);
      if (o.description !== undefined) text(o.description, `${oat}/description`, { max: 75, plainOnly: true });
    };
    const sameOption = (a: unknown, b: unknown) => isObj(a) && isObj(b) && a.value === b.value && JSON.stringify(a.text) === JSON.stringify(b.text);
    if (e.type === 'static_select' || e.type === 'radio_buttons') {
      const max = e.type === 'static_select' ? 100 : 10;
      if (!Array.isArray(e.options) || e.options.length < 1) return bad('must provide at least 1 item', `${at}/options`);
      if (e.options.length > max) bad(`no more than ${max} items allowed`, `${at}/options`);
      const values = new Set<unknown>();
      e.options.forEach((o, j) => {
        option(o, `${at}/options/${j}`, e.type === 'static_select');
        if (isObj(o) && values.has(o.value)) bad('option values must be unique', `${at}/options/${j}/value`);
        if (isObj(o)) values.add(o.value);
      });
      if (e.initial_option !== undefined && !e.options.some((o) => sameOption(o, e.initial_option))) bad('must match one of the options exactly', `${at}/initial_option`);
      if (e.placeholder !== undefined) {
        if (e.type === 'radio_buttons') bad('radio_buttons take no placeholder', `${at}/placeholder`);
        else text(e.placeholder, `${at}/placeholder`, { max: 150, plainOnly: true });
      }
      return;
    }
    if (e.type === 'external_select') {
      if (e.options !== undefined) bad('external_select takes no options (they come from the options load URL)', `${at}/options`);
      if (e.initial_option !== undefined) option(e.initial_option, `${at}/initial_option`, true);
      if (e.min_query_length !== undefined && (typeof e.min_query_length !== 'number' || e.min_query_length < 0)) bad('must be a number >= 0', `${at}/min_query_length`);
      if (e.placeholder !== undefined) text(e.placeholder, `${at}/placeholder`, { max: 150, plainOnly: true });
      return;
    }
    if (e.type === 'datetimepicker') {
      if (e.initial_date_time !== undefined && (typeof e.initial_date_time !== 'number' || !/^\d{10}$/.test(String(e.initial_date_time)))) bad('must be a 10-digit UNIX timestamp in seconds', `${at}/initial_date_time`);
      if (surface === 'message') bad('datetimepicker is not allowed in messages', `${at}/type`);
      return;
    }
    bad(`unsupported element type "${String(e.type)}"`, `${at}/type`);
  };

  if (!Array.isArray(blocks)) {
    bad('must be an array', '');
    return problems;
  }
  const maxBlocks = surface === 'message' ? 50 : 100;
  if (blocks.length > maxBlocks) bad(`no more than ${maxBlocks} items allowed`, '');
  const blockIds = new Set<string>();
  blocks.forEach((b, i) => {
    const at = `/blocks/${i}`;
    if (!isObj(b)) return bad('must be an object', at);
    if (b.block_id !== undefined) {
      if (typeof b.block_id !== 'string' || b.block_id.length > 255) bad('must be a string of less than 256 characters', `${at}/block_id`);
      else if (blockIds.has(b.block_id)) bad(`block_id "${b.block_id}" is already used`, `${at}/block_id`);
      else blockIds.add(b.block_id);
    }
    switch (b.type) {
      case 'section': {
        if (b.text === undefined && b.fields === undefined) bad('must define either `text` or `fields`', at);
        if (b.text !== undefined) text(b.text, `${at}/text`, { max: 3000 });
        if (b.fields !== undefined) {
          if (!Array.isArray(b.fields) || b.fields.length < 1) bad('must provide at least 1 item', `${at}/fields`);
          else {
            if (b.fields.length > 10) bad('no more than 10 items allowed', `${at}/fields`);
            b.fields.forEach((f, j) => text(f, `${at}/fields/${j}`, { max: 2000 }));
          }
        }
        if (b.accessory !== undefined) element(b.accessory, `${at}/accessory`, new Set());
        return;
      }
      case 'header':
        return text(b.text, `${at}/text`, { max: 150, plainOnly: true });
      case 'context': {
        if (!Array.isArray(b.elements) || b.elements.length < 1) return bad('must provide at least 1 item', `${at}/elements`);
        if (b.elements.length > 10) bad('no more than 10 items allowed', `${at}/elements`);
        b.elements.forEach((e, j) => {
          if (isObj(e) && e.type === 'image') return;
          text(e, `${at}/elements/${j}`, { max: 3000 });
        });
        return;
      }
      case 'actions': {
        if (!Array.isArray(b.elements) || b.elements.length < 1) return bad('must provide at least 1 item', `${at}/elements`);
        if (b.elements.length > 25) bad('no more than 25 items allowed', `${at}/elements`);
        const ids = new Set<string>();
        b.elements.forEach((e, j) => element(e, `${at}/elements/${j}`, ids));
        return;
      }
      case 'divider':
        return;
      case 'input': {
        if (surface === 'message') bad('input blocks are only allowed in modals and home tabs', `${at}/type`);
        text(b.label, `${at}/label`, { max: 2000, plainOnly: true });
        if (b.dispatch_action !== undefined && typeof b.dispatch_action !== 'boolean') bad('must be a boolean', `${at}/dispatch_action`);
        if (b.optional !== undefined && typeof b.optional !== 'boolean') bad('must be a boolean', `${at}/optional`);
        if (!isObj(b.element) || !['plain_text_input', 'static_select', 'external_select', 'radio_buttons', 'datetimepicker'].includes(String(b.element.type))) bad('unsupported input element', `${at}/element/type`);
        if (b.hint !== undefined) text(b.hint, `${at}/hint`, { max: 2000, plainOnly: true });
        element(b.element, `${at}/element`, new Set());
        return;
      }
      default:
        bad(`unsupported type "${String(b.type)}"`, `${at}/type`);
    }
  });
  return problems;
}

/** A modal (views.open, views.update) or an App Home (views.publish) as Slack takes it. */
export function viewProblems(view: unknown): string[] {
  const problems: string[] = [];
  if (!isObj(view)) return ['must be an object [json-pointer:/view]'];
  const bad = (msg: string, at: string) => problems.push(`${msg} [json-pointer:/view${at}]`);
  const title = (t: unknown, at: string) => {
    if (!isObj(t) || t.type !== 'plain_text' || typeof t.text !== 'string') return bad('must be a plain_text object', at);
    if (t.text.trim().length < 1 || t.text.length > 24) bad('must be 1-24 characters', `${at}/text`);
  };
  if (view.type === 'home') {
    if (typeof view.private_metadata === 'string' && view.private_metadata.length > 3000) bad('must be less than 3001 characters', '/private_metadata');
    problems.push(...blockKitProblems(view.blocks, 'home').map((p) => p.replace('[json-pointer:', '[json-pointer:/view')));
    return problems;
  }
  if (view.type !== 'modal') bad('must be modal', '/type');
  title(view.title, '/title');
  // A modal with input blocks needs a submit button.
  if (view.submit === undefined && Array.isArray(view.blocks) && view.blocks.some((b) => isObj(b) && b.type === 'input')) bad('submit is required when a view has input blocks', '/submit');
  if (view.submit !== undefined) title(view.submit, '/submit');
  if (view.close !== undefined) title(view.close, '/close');
  if (typeof view.private_metadata === 'string' && view.private_metadata.length > 3000) bad('must be less than 3001 characters', '/private_metadata');
  if (typeof view.callback_id === 'string' && view.callback_id.length > 255) bad('must be less than 256 characters', '/callback_id');
  problems.push(...blockKitProblems(view.blocks, 'modal').map((p) => p.replace('[json-pointer:', '[json-pointer:/view')));
  return problems;
}
