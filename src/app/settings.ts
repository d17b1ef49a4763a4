// What the use cases are given: the ports (ServiceDeps) and the knobs (ServiceSettings).
import type { PolicyBook } from '../core/policy.js';
import type { DirectoryGroups } from './directory-groups.js';
import type { AuditLog, Clock, IdSource, NetworkGate, Notifier, OnCallDirectory, RateLimiter, RequestStore, Scheduler } from './ports.js';

export interface ServiceSettings {
  /** Shortest grant a request may ask for (policies may allow seconds for demos; default 5 min). */
  minDurationMs: number;
  /** Base URL people can open, for the "my IP" link; without it `from` is required. */
  publicUrl?: string;
  /** How long the "my IP" link stays valid. */
  sourceLinkTtlMs: number;
  /**
   * If a revocation job fires more than this (plus the grant's close lead) before the stored
   * expiry, the grant was extended: reschedule.
   */
  expiryToleranceMs: number;
  /**
   * Early close: a revocation starts before the expiry by the gate's estimate of how long the close
   * takes (`NetworkGate.closeLeadMs`) plus this margin (the job starting late, the commit), so the
   * rules are gone by the expiry. Only where the gate estimates more than 0.
   */
  closeLeadMarginMs: number;
  /** …and never more than this early (nor more than half the grant): the cap the requester can count on. 0: at the expiry. */
  closeLeadMaxMs: number;
  /** Requests per principal per window (0: no limit). */
  requestRate: { count: number; windowMs: number };
  /** Reads (list, status, vms, a card refresh) per principal per window (0: no limit). */
  readRate: { count: number; windowMs: number };
  /** Audit reads (`audit`, the JSON and CSV exports) per principal per window (0: no limit). */
  auditRate: { count: number; windowMs: number };
  /** Requests in flight (waiting, approved or active) per principal and per target; 0: no cap. */
  maxActivePerPrincipal: number;
  maxActivePerTarget: number;
}

export const DEFAULT_SETTINGS: ServiceSettings = {
  minDurationMs: 5 * 60_000,
  sourceLinkTtlMs: 5 * 60_000,
  expiryToleranceMs: 250,
  closeLeadMarginMs: 1000,
  closeLeadMaxMs: 30_000,
  requestRate: { count: 0, windowMs: 60_000 },
  readRate: { count: 0, windowMs: 60_000 },
  auditRate: { count: 0, windowMs: 60_000 },
  maxActivePerPrincipal: 0,
  maxActivePerTarget: 0,
};

export interface ServiceDeps {
  store: RequestStore;
  audit: AuditLog;
  scheduler: Scheduler;
  gate: NetworkGate;
  notifier: Notifier;
  clock: Clock;
  ids: IdSource;
  book: PolicyBook;
  /** Answers "is this person on call" for auto-approval rules that need it (PagerDuty). */
  onCall?: OnCallDirectory;
  /** Members of directory-backed groups (Entra ID, Slack user groups), cached with a TTL. */
  directory?: DirectoryGroups;
  /** Per-principal request rate (abuse limit); without it only the caps on grants in flight apply. */
  rateLimiter?: RateLimiter;
  settings?: Partial<ServiceSettings>;
  log?: (msg: string, err?: unknown) => void;
}

/** How many times a transition re-reads and re-decides after losing a compare-and-set. */
export const CAS_ATTEMPTS = 20;
/** How long after an approval the activation guard job fires (see guardActivation in requests.ts). */
export const ACTIVATION_GUARD_MS = 15_000;
