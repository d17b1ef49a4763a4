// What every use case is handed: the ports, the settings, the log and the current policy book,
// with the reads they all share (a request by id, as a given person may see it).
import { canSee, notFoundError, targetOf } from '../core/authz.js';
import { JitError } from '../core/errors.js';
import type { PolicyBook } from '../core/policy.js';
import type { AccessRequest, PrincipalId, Target } from '../core/types.js';
import { hasAnyRole } from '../core/rbac.js';
import { PolicyBooks } from './books.js';
import { DEFAULT_SETTINGS, type ServiceDeps, type ServiceSettings } from './settings.js';

export type Log = (msg: string, err?: unknown) => void;

export class UseCaseContext {
  readonly settings: ServiceSettings;
  readonly log: Log;
  readonly books: PolicyBooks;

  constructor(readonly deps: ServiceDeps) {
    this.settings = { ...DEFAULT_SETTINGS, ...deps.settings };
    this.log = deps.log ?? (() => {});
    this.books = new PolicyBooks(deps.book, deps, this.log);
  }

  /** The book every decision reads (see PolicyBooks.current). */
  get book(): PolicyBook {
    return this.books.current();
  }

  /** The time every use case reads: the Clock port's (never Date.now(), so tests can hold it). */
  now(): number {
    return this.deps.clock.now();
  }

  targetOf(req: AccessRequest): Target {
    return targetOf(this.book, req);
  }

  canSee(actor: PrincipalId, req: AccessRequest): boolean {
    return canSee(this.book, actor, req);
  }

  notFound(id: string): JitError {
    return notFoundError(this.book, id);
  }

  async mustGet(id: string): Promise<AccessRequest> {
    const req = await this.deps.store.get(id);
    if (!req) throw new JitError('not_found', `there is no request ${id}`, 'list');
    return req;
  }

  /** The request, if it exists and `actor` may see it; else not_found (before any permission message). */
  async mustSee(actor: PrincipalId, id: string): Promise<AccessRequest> {
    if (!hasAnyRole(this.book, actor)) throw this.notFound(id);
    const req = await this.deps.store.get(id);
    if (!req || !this.canSee(actor, req)) throw this.notFound(id);
    return req;
  }
}
