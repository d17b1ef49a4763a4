// The kinds of environment variable the core and each adapter's configuration are made of
// (durations, booleans, rates, priority ranges, GUIDs). A bad value gets a message that, through
// loadConfig, names the variable.
import { z } from 'zod';
import { parseDuration } from '../core/duration.js';

export const durationVar = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      try {
        return parseDuration(v);
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration; write 5m, 60s or PT5M` });
        return z.NEVER;
      }
    });

/**
 * The variables every chat platform has, named after its prefix: `<P>_AUDIT_INTERVAL` (at most one
 * audit line per channel per this; default 1 s) and `<P>_USER_CACHE_TTL` (how long a platform user
 * → principal lookup is trusted; default 10 min).
 */
export function chatPlatformVars<P extends string>(prefix: P): Record<`${P}_AUDIT_INTERVAL` | `${P}_USER_CACHE_TTL`, ReturnType<typeof durationVar>> {
  return { [`${prefix}_AUDIT_INTERVAL`]: durationVar('1s'), [`${prefix}_USER_CACHE_TTL`]: durationVar('10m') } as Record<`${P}_AUDIT_INTERVAL` | `${P}_USER_CACHE_TTL`, ReturnType<typeof durationVar>>;
}

/**
 * A comma-separated list, empty by default: `item` reads each entry as a value or answers the
 * problem with it (each refused entry is reported, naming the variable through loadConfig).
 */
export const listVar = <T>(item: (part: string) => { value: T } | { problem: string }) =>
  z
    .string()
    .default('')
    .transform((v, ctx) => {
      const out: T[] = [];
      for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
        const got = item(part);
        if ('problem' in got) ctx.addIssue({ code: 'custom', message: got.problem });
        else out.push(got.value);
      }
      return out;
    });

/** A duration (also in ms: `500ms`) or `0` (off), at most `maxMs`: how early a revocation may start, and its margin. */
export const leadVar = (fallback: string, maxMs: number, max: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      if (/^0+[a-z]*$/i.test(v.trim())) return 0;
      const millis = /^\s*(\d{1,6})\s*ms\s*$/i.exec(v);
      let ms: number;
      try {
        ms = millis ? Number(millis[1]) : parseDuration(v);
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration; write 500ms, 30s, 1m or PT30S (0: off)` });
        return z.NEVER;
      }
      if (ms > maxMs) {
        ctx.addIssue({ code: 'custom', message: `at most ${max}` });
        return z.NEVER;
      }
      return ms;
    });

/** An NSG priority range `lo-hi` within Azure's 100-4096. */
export const priorityRange = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const m = /^(\d{3,4})-(\d{3,4})$/.exec(v);
      const range = m ? ([Number(m[1]), Number(m[2])] as [number, number]) : null;
      if (!range || range[0] < 100 || range[1] > 4096 || range[0] > range[1]) {
        ctx.addIssue({ code: 'custom', message: `must be a range within 100-4096, e.g. ${fallback}` });
        return z.NEVER;
      }
      return range;
    });

/** `<count>/<duration>` such as `30/1m`, or `off` (no limit). */
export const rate = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      if (v === 'off' || v === '0') return { count: 0, windowMs: 60_000 };
      const m = /^(\d{1,6})\/(.+)$/.exec(v);
      let windowMs = NaN;
      try {
        windowMs = m ? parseDuration(m[2]!) : NaN;
      } catch {
        /* reported below */
      }
      if (!m || Number.isNaN(windowMs) || Number(m[1]) < 1) {
        ctx.addIssue({ code: 'custom', message: 'must be <count>/<duration> such as 30/1m, or off' });
        return z.NEVER;
      }
      return { count: Number(m[1]), windowMs };
    });

export const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
    .optional()
    .transform((v) => (v === undefined || v === '' ? fallback : v === 'true' || v === '1' || v === 'yes'));

export const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || host.startsWith('127.');

export const isLoopbackUrl = (u: string): boolean => isLoopback(new URL(u).hostname.replace(/^\[|\]$/g, ''));

/** The core variables an adapter's checks may read beside its own. */
export interface SharedEnv {
  HOST: string;
  PUBLIC_URL?: string | undefined;
  JIT_NETWORK: string;
}

/** Parsed values of a shape of variables. */
export type EnvOf<S extends z.ZodRawShape> = z.infer<z.ZodObject<S>>;
