// GET /metrics (Prometheus text format) moves as a flow runs; /readyz turns 503 when a dependency
// is missing or the worker stops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestOf, startHarness, waitFor, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function scrape(): Promise<{ text: string; value: (name: string, labels?: Record<string, string>) => number }> {
  const res = await fetch(`${h.app.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const value = (name: string, labels: Record<string, string> = {}) => {
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
    }
    return 0;
  };
  return { text, value };
}

describe('metrics', () => {
  it('move as a request is made, approved, opened and expires', async () => {
    const before = await scrape();
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 2s from 203.0.113.60')).reply).id;
    const pending = await scrape();
    expect(pending.value('jit_requests_total', { outcome: 'created' })).toBe(before.value('jit_requests_total', { outcome: 'created' }) + 1);
    expect(pending.value('jit_pending_requests')).toBeGreaterThanOrEqual(1);

    await h.cmd('bob@contoso.com', `approve ${id}`);
    const open = await scrape();
    expect(open.value('jit_requests_total', { outcome: 'approved' })).toBe(before.value('jit_requests_total', { outcome: 'approved' }) + 1);
    expect(open.value('jit_requests_total', { outcome: 'activated' })).toBe(before.value('jit_requests_total', { outcome: 'activated' }) + 1);
    expect(open.value('jit_active_grants')).toBeGreaterThanOrEqual(1);
    expect(open.value('jit_time_to_decision_seconds_count', { decision: 'approved' })).toBe(before.value('jit_time_to_decision_seconds_count', { decision: 'approved' }) + 1);
    expect(open.value('jit_time_to_open_seconds_count')).toBe(before.value('jit_time_to_open_seconds_count') + 1);
    expect(open.value('jit_network_write_seconds_count', { op: 'open' })).toBe(before.value('jit_network_write_seconds_count', { op: 'open' }) + 1);
    // The revocation waits as a delayed BullMQ job.
    expect(open.value('jit_queue_jobs', { queue: 'revoke', state: 'delayed' })).toBeGreaterThanOrEqual(1);

    await waitFor('expired', async () => ((await h.get(id))!.status === 'expired' ? true : null), 10_000);
    // The request turns `expired` first, then its rules are closed: wait for the close to be timed.
    const closes = before.value('jit_network_write_seconds_count', { op: 'close' });
    const after = await waitFor('closed', async () => {
      const m = await scrape();
      return m.value('jit_network_write_seconds_count', { op: 'close' }) > closes ? m : null;
    }, 10_000);
    expect(after.value('jit_requests_total', { outcome: 'expired' })).toBe(before.value('jit_requests_total', { outcome: 'expired' }) + 1);
    expect(after.value('jit_revocation_lag_seconds_count')).toBe(before.value('jit_revocation_lag_seconds_count') + 1);
    expect(after.value('jit_network_write_seconds_count', { op: 'close' })).toBeGreaterThan(before.value('jit_network_write_seconds_count', { op: 'close' }));
    // Process metrics come along under their standard names (stock dashboards work); labels
    // carry no ids, names or addresses.
    expect(after.text).toMatch(/^process_resident_memory_bytes \d/m);
    expect(after.text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(after.text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    expect(after.text).not.toMatch(/^jit_(process|nodejs)_/m);
    expect(after.text).not.toContain(id);
    expect(after.text).not.toContain('alice');
    expect(after.text).not.toContain('203.0.113.60');
  });

  it('a denial counts as denied, with its time to decision', async () => {
    const before = await scrape();
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.61')).reply).id;
    await h.cmd('bob@contoso.com', `deny ${id} reason "not today"`);
    const after = await scrape();
    expect(after.value('jit_requests_total', { outcome: 'denied' })).toBe(before.value('jit_requests_total', { outcome: 'denied' }) + 1);
    expect(after.value('jit_time_to_decision_seconds_count', { decision: 'denied' })).toBe(before.value('jit_time_to_decision_seconds_count', { decision: 'denied' }) + 1);
  });

  it('passes promtool\'s lint rules (promlint): help text, _total only and always on counters, base units, no reserved suffixes or labels, snake_case', async () => {
    const { text } = await scrape();
    expect(promlint(text)).toEqual([]);
    // The rules do catch what they are for (the gauges prom-client names *_total, the old arm gauge).
    expect(promlint('# HELP nodejs_active_handles_total x\n# TYPE nodejs_active_handles_total gauge\nnodejs_active_handles_total 3\n')).toEqual([
      'nodejs_active_handles_total: non-counter metrics should not have "_total" suffix',
    ]);
    expect(promlint('# TYPE jit_network_arm_answers gauge\njit_network_arm_answers{kind="puts"} 3\n# HELP jitWait_ms x\n# TYPE jitWait_ms counter\njitWait_ms 1\n')).toEqual([
      'jit_network_arm_answers: no help text',
      'jitWait_ms: counter metrics should have "_total" suffix',
      'jitWait_ms: metric names should be written in \'snake_case\' not \'camelCase\'',
      'jitWait_ms: metric names should not contain abbreviated units',
    ]);
    // The ARM answers are a counter now, with the gauge gone.
    expect(text).toContain('# TYPE jit_network_arm_answers_total counter');
    expect(text).not.toMatch(/^# TYPE jit_network_arm_answers gauge/m);
  });

  it('/readyz says 503 when the worker stops, and ready again when it is back', async () => {
    await h.app.stopWorker();
    const down = await fetch(`${h.app.url}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: 'not ready', worker: 'stopped' });
    // Liveness is unaffected: nothing to restart.
    expect((await fetch(`${h.app.url}/healthz`)).status).toBe(200);
    h.app.startWorker();
    expect((await fetch(`${h.app.url}/readyz`)).status).toBe(200);
  });
});

/**
 * promtool's `check metrics` lint (client_golang prometheus/testutil/promlint, DefaultValidations:
 * lintHelp, lintMetricUnits, lintCounter, lintHistogramSummaryReserved, lintMetricTypeInName,
 * lintReservedChars, lintCamelCase, lintUnitAbbreviations), applied to the text exposition format.
 * Checked against promtool 2.42 on the same output: both report nothing.
 */
function promlint(exposition: string): string[] {
  interface Family { type: string; help: boolean; labels: Set<string> }
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { type: 'untyped', help: false, labels: new Set() }));
    return f;
  };
  const baseOf = (sample: string) => {
    for (const suffix of ['_bucket', '_count', '_sum']) {
      const base = sample.slice(0, -suffix.length);
      if (sample.endsWith(suffix) && ['histogram', 'summary'].includes(families.get(base)?.type ?? '')) return base;
    }
    return sample;
  };
  for (const line of exposition.split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta) {
      if (meta[1] === 'HELP') family(meta[2]!).help = true;
      else family(meta[2]!).type = meta[3] ?? 'untyped';
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+/.exec(line);
    if (!sample) continue;
    const f = family(baseOf(sample[1]!));
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) f.labels.add(m[1]!);
  }
  const UNITS: Record<string, string> = {
    amperes: 'amperes', bytes: 'bytes', celsius: 'celsius', grams: 'grams', joules: 'joules', kelvin: 'kelvin', meters: 'meters', metres: 'metres', seconds: 'seconds', volts: 'volts',
    minutes: 'seconds', hours: 'seconds', days: 'seconds', weeks: 'seconds', kelvins: 'kelvin', fahrenheit: 'celsius', rankine: 'celsius', inches: 'meters', yards: 'meters', miles: 'meters',
    bits: 'bytes', calories: 'joules', pounds: 'grams', ounces: 'grams',
  };
  const PREFIXES = ['pico', 'nano', 'micro', 'milli', 'centi', 'deci', 'deca', 'hecto', 'kilo', 'kibi', 'mega', 'mibi', 'giga', 'gibi', 'tera', 'tebi', 'peta', 'pebi'];
  const ABBREVIATIONS = ['s', 'ms', 'us', 'ns', 'sec', 'b', 'kb', 'mb', 'gb', 'tb', 'pb', 'm', 'h', 'd'];
  const camel = /[a-z][A-Z]/;
  const problems: string[] = [];
  for (const [name, f] of families) {
    const say = (text: string) => problems.push(`${name}: ${text}`);
    const lower = name.toLowerCase();
    const hasPart = (part: string) => lower.includes(`_${part}_`) || lower.endsWith(`_${part}`);
    if (!f.help) say('no help text');
    for (const word of name.split('_')) {
      const prefix = PREFIXES.find((p) => word.startsWith(p) && UNITS[word.slice(p.length)]);
      const base = UNITS[word] ?? (prefix ? UNITS[word.slice(prefix.length)] : undefined);
      if (base) {
        if (base !== word) say(`use base unit "${base}" instead of "${word}"`);
        break;
      }
    }
    const total = name.endsWith('_total');
    if (f.type === 'counter' && !total) say('counter metrics should have "_total" suffix');
    if (f.type !== 'untyped' && f.type !== 'counter' && total) say('non-counter metrics should not have "_total" suffix');
    if (f.type !== 'untyped') {
      if (f.type !== 'histogram' && name.endsWith('_bucket')) say('non-histogram metrics should not have "_bucket" suffix');
      for (const s of ['_count', '_sum']) if (f.type !== 'histogram' && f.type !== 'summary' && name.endsWith(s)) say(`non-histogram and non-summary metrics should not have "${s}" suffix`);
      if (f.type !== 'histogram' && f.labels.has('le')) say('non-histogram metrics should not have "le" label');
      if (f.type !== 'summary' && f.labels.has('quantile')) say('non-summary metrics should not have "quantile" label');
    }
    for (const t of ['counter', 'gauge', 'histogram', 'summary']) if (hasPart(t)) say(`metric name should not include type '${t}'`);
    if (name.includes(':')) say("metric names should not contain ':'");
    if (camel.test(name)) say("metric names should be written in 'snake_case' not 'camelCase'");
    if ([...f.labels].some((l) => camel.test(l))) say("label names should be written in 'snake_case' not 'camelCase'");
    if (ABBREVIATIONS.some(hasPart)) say('metric names should not contain abbreviated units');
  }
  return problems;
}
