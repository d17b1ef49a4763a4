// Shared by the benchmarks: percentiles and one summary line per figure. (Keys a run wrote are
// removed with the test harness's deleteKeys.)
export function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** Prints `name: n=… p50=… p99=… max=…` (values in ms; shown in seconds with `unit: 's'`) and returns the figures. */
export function summary(name: string, values: number[], unit: 'ms' | 's' = 'ms'): Summary {
  const out = { n: values.length, p50: pct(values, 50), p99: pct(values, 99), max: Math.max(...values) };
  const f = (v: number) => (unit === 's' ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);
  console.log(`${name}: n=${out.n} p50=${f(out.p50)} p99=${f(out.p99)} max=${f(out.max)}`);
  return out;
}
