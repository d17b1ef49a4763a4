// PagerDuty's part of the configuration (on-call look-ups for `autoApprove` rules with `onCall`).
import { z } from 'zod';
import type { EnvOf } from '../../config/vars.js';
import { PagerDutyOnCall } from './oncall.js';

export const pagerDutyEnv = {
  PAGERDUTY_API_TOKEN: z.string().min(1).optional(),
  PAGERDUTY_API_URL: z.url({ message: 'must be a URL, e.g. https://api.pagerduty.com' }).optional(),
};
export type PagerDutyEnv = EnvOf<typeof pagerDutyEnv>;

/** The on-call source when PAGERDUTY_API_TOKEN is set. */
export function createOnCall(cfg: PagerDutyEnv): PagerDutyOnCall | undefined {
  return cfg.PAGERDUTY_API_TOKEN ? new PagerDutyOnCall({ token: cfg.PAGERDUTY_API_TOKEN, ...(cfg.PAGERDUTY_API_URL ? { apiUrl: cfg.PAGERDUTY_API_URL } : {}) }) : undefined;
}
