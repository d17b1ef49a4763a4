// A small Azure Resource Manager REST client on the Azure SDK's HTTP pipeline (token acquisition
// and refresh, TLS), with ARM's rules made explicit instead of left to a generic poller:
//
// - Errors keep ARM's code (`error.code`), status and Retry-After, also when a long-running
//   operation ends `Failed` or `Canceled` (the operation's own error code), so callers can tell
//   "retry" (AnotherOperationInProgress, RetryableError, Canceled…) from "give up" (ScopeLocked,
//   LinkedAuthorizationFailed, validation codes).
// - A write is followed to a terminal state: Azure-AsyncOperation (or Location) is polled until
//   Succeeded / Failed / Canceled; without either, the resource's provisioningState is. Only then
//   is the write reported done. If-Match / If-None-Match go on the PUT alone, never on the polls or
//   the final GET.
// - Reads are retried (429 with Retry-After, 5xx, network errors, timeouts) with jittered backoff
//   until a deadline, under a concurrency cap, because ARM throttles reads per principal too.
// - Azure Resource Graph queries (POST /providers/Microsoft.ResourceGraph/resources) are reads:
//   every page ($skipToken) is retried like one, and the service's own quota is kept — its
//   `x-ms-user-quota-remaining` / `x-ms-user-quota-resets-after` headers pause the next query
//   instead of meeting a 429.
import { ServiceClient } from '@azure/core-client';
import { createHttpHeaders, createPipelineRequest, type HttpMethods, type PipelineResponse } from '@azure/core-rest-pipeline';
import { ArmError, answerClass, backoff, classify, quotaResetMs, type ArmAnswer, type ArmCall } from './arm-errors.js';
import { RESOURCE_GRAPH_API, RESOURCE_GRAPH_PAGE, RESOURCE_GRAPH_PATH, type ArmClientOptions, type ArmDoc, type ArmStats } from './arm-api.js';

export { COMPUTE_API, NETWORK_API, RESOURCES_API, RESOURCE_GRAPH_API, RESOURCE_GRAPH_PAGE, RESOURCE_GRAPH_PATH, SECURITY_API, type ArmClientOptions, type ArmDoc, type ArmStats } from './arm-api.js';
export { ArmError, backoff, classify, quotaResetMs, type ArmAnswer, type ArmCall } from './arm-errors.js';

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

export class ArmClient {
  /** Every ARM call's answer since start, keyed `<call> <answer>` (metrics: jit_network_arm_answers_total). */
  private readonly answerCounts = new Map<string, number>();

  private answered(call: ArmCall, answer: ArmAnswer): void {
    const key = `${call} ${answer}`;
    this.answerCounts.set(key, (this.answerCounts.get(key) ?? 0) + 1);
  }

  /** ARM's answers since start: one count per call kind and answer class. */
  armAnswers(): Array<{ call: ArmCall; answer: ArmAnswer; count: number }> {
    return [...this.answerCounts].map(([key, count]) => {
      const [call, answer] = key.split(' ') as [ArmCall, ArmAnswer];
      return { call, answer, count };
    });
  }

  private readonly http: ServiceClient;
  private readonly endpoint: string;
  private readsInFlight = 0;
  private readonly readWaiters: Array<() => void> = [];
  readonly stats: ArmStats = { puts: 0, deletes: 0, actions: 0, reads: 0, readRetries: 0, retries: 0, conflicts409: 0, preconditionFailed412: 0, throttled429: 0, serverErrors: 0, timeouts: 0, operationsFailed: 0, operationsCanceled: 0, graphQueries: 0, graphQuotaWaits: 0 };
  /** Resource Graph's user quota is spent until then (its reset, as the last answer said). */
  private graphPausedUntil = 0;

  constructor(private readonly opts: ArmClientOptions) {
    this.endpoint = opts.endpoint.replace(/\/+$/, '');
    this.http = new ServiceClient({
      credential: opts.credential,
      credentialScopes: [`${this.endpoint}/.default`],
      endpoint: this.endpoint,
      // Our own loops decide (deadlines, Retry-After, re-reads): the pipeline must not also retry.
      retryOptions: { maxRetries: 0 },
      ...(opts.caCert ? { tlsOptions: { ca: opts.caCert } } : {}),
    });
  }

  get pollMs(): number {
    return this.opts.pollMs;
  }

  url(path: string, apiVersion: string): string {
    if (/^https?:\/\//.test(path)) return path;
    return `${this.endpoint}${path}${path.includes('?') ? '&' : '?'}api-version=${apiVersion}`;
  }

  /** One HTTP exchange; non-2xx answers become ArmErrors with ARM's code. */
  private async send(method: HttpMethods, url: string, opts: { body?: unknown; headers?: Record<string, string>; read?: boolean } = {}): Promise<{ status: number; headers: PipelineResponse['headers']; json: ArmDoc | undefined }> {
    const request = createPipelineRequest({
      url,
      method,
      headers: createHttpHeaders({ accept: 'application/json', ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(opts.headers ?? {}) }),
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
    const ctl = new AbortController();
    request.abortSignal = ctl.signal;
    let timer: NodeJS.Timeout | undefined;
    const what = `${method} ${url.replace(this.endpoint, '').split('?')[0]!.split('/').slice(-2).join('/')}`;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.stats.timeouts++;
        const err = new ArmError(`${what}: no answer from Azure Resource Manager within ${Math.round(this.opts.timeoutMs / 1000)} s`, 'RequestTimeout');
        ctl.abort(err);
        reject(err);
      }, this.opts.timeoutMs);
    });
    const call: ArmCall = method === 'GET' || opts.read ? 'read' : 'write';
    let res: PipelineResponse;
    try {
      res = await Promise.race([this.http.sendRequest(request), timeout]);
    } catch (err) {
      this.answered(call, err instanceof ArmError ? 'timeout' : 'network');
      if (err instanceof ArmError) throw err;
      throw new ArmError(`${what}: ${err instanceof Error ? err.message : String(err)}`, 'NetworkError');
    } finally {
      clearTimeout(timer);
    }
    let json: ArmDoc | undefined;
    try {
      json = res.bodyAsText ? (JSON.parse(res.bodyAsText) as ArmDoc) : undefined;
    } catch {
      json = undefined;
    }
    this.answered(call, answerClass(res.status));
    if (res.status >= 200 && res.status < 300) return { status: res.status, headers: res.headers, json };
    const error = (json?.error ?? {}) as { code?: string; message?: string };
    const ra = res.headers.get('retry-after');
    let retryAfterMs = ra ? (/^\d+$/.test(ra) ? Number(ra) * 1000 : Math.max(0, Date.parse(ra) - Date.now())) : undefined;
    // Resource Graph may say only when its quota resets (hh:mm:ss): then that is when to retry.
    if (res.status === 429 && (retryAfterMs === undefined || Number.isNaN(retryAfterMs))) retryAfterMs = quotaResetMs(res.headers.get('x-ms-user-quota-resets-after'));
    if (res.status === 409) this.stats.conflicts409++;
    if (res.status === 412) this.stats.preconditionFailed412++;
    if (res.status === 429) this.stats.throttled429++;
    if (res.status >= 500) this.stats.serverErrors++;
    throw new ArmError(`${what}: ${error.code ?? res.status} ${error.message ?? ''}`.trim(), error.code ?? String(res.status), res.status, retryAfterMs !== undefined && !Number.isNaN(retryAfterMs) ? retryAfterMs : undefined);
  }

  private async slot(): Promise<() => void> {
    while (this.readsInFlight >= this.opts.readConcurrency) await new Promise<void>((r) => this.readWaiters.push(r));
    this.readsInFlight++;
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      this.readsInFlight--;
      this.readWaiters.shift()?.();
    };
  }

  /** GET with retries (429 Retry-After, 5xx, network errors, timeouts) under the concurrency cap. */
  async get(path: string, apiVersion: string, deadlineMs = this.opts.readDeadlineMs): Promise<{ doc: ArmDoc; etag?: string }> {
    return this.reading(async () => {
      const res = await this.send('GET', this.url(path, apiVersion));
      const etag = res.headers.get('etag') ?? (typeof res.json?.etag === 'string' ? res.json.etag : undefined);
      return { doc: res.json ?? {}, ...(etag ? { etag } : {}) };
    }, deadlineMs);
  }

  /**
   * One read, retried (429 with Retry-After, 5xx, network errors, timeouts) with jittered backoff
   * until the deadline, each attempt under the concurrency cap. `before` runs ahead of every
   * attempt, outside the cap (waiting for a quota to reset holds no slot).
   */
  private async reading<T>(attempt: () => Promise<T>, deadlineMs: number, before?: () => Promise<void>): Promise<T> {
    const deadline = Date.now() + deadlineMs;
    for (let n = 1; ; n++) {
      if (before) await before();
      const free = await this.slot();
      try {
        this.stats.reads++;
        return await attempt();
      } catch (err) {
        free();
        if (classify(err) !== 'retry' || (err instanceof ArmError && err.status === 409)) throw err;
        const wait = backoff(n, err instanceof ArmError ? err.retryAfterMs : undefined);
        if (Date.now() + wait > deadline) throw err;
        this.stats.readRetries++;
        await this.opts.sleep(wait);
      } finally {
        free();
      }
    }
  }

  /**
   * Every row an Azure Resource Graph query returns over these subscriptions, page by page
   * (`$skipToken`, `$top` 1,000; the query must project `id` and sort, or the service cannot page).
   * Each page is a read: retried on 429 / 5xx / timeouts, and paced by the service's user quota
   * (x-ms-user-quota-remaining / x-ms-user-quota-resets-after). A result the service truncated
   * without a `$skipToken` is an error, never a silently short answer.
   */
  async graph(query: string, subscriptions: string[], deadlineMs = this.opts.readDeadlineMs): Promise<ArmDoc[]> {
    const rows: ArmDoc[] = [];
    const url = this.url(RESOURCE_GRAPH_PATH, RESOURCE_GRAPH_API);
    let skipToken: string | undefined;
    for (;;) {
      const body = { subscriptions, query, options: { $top: RESOURCE_GRAPH_PAGE, resultFormat: 'objectArray', ...(skipToken ? { $skipToken: skipToken } : {}) } };
      // One query at a time: the quota headers then describe exactly what is left.
      let release: (() => void) | undefined;
      const page = await this.reading(
        async () => {
          this.stats.graphQueries++;
          try {
            const res = await this.send('POST', url, { body, read: true });
            this.noteGraphQuota(res.headers);
            return res.json ?? {};
          } catch (err) {
            if (err instanceof ArmError && err.status === 429) this.graphPausedUntil = Math.max(this.graphPausedUntil, Date.now() + (err.retryAfterMs ?? 0));
            throw err;
          } finally {
            release?.();
          }
        },
        deadlineMs,
        async () => {
          release = await this.graphTurn();
          const wait = this.graphPausedUntil - Date.now();
          if (wait > 0) {
            this.stats.graphQuotaWaits++;
            await this.opts.sleep(wait);
          }
        },
      );
      const data = page.data;
      if (!Array.isArray(data)) throw new ArmError('Resource Graph: the answer has no data array (resultFormat objectArray expected)', 'InvalidResponse');
      rows.push(...(data as ArmDoc[]));
      const next = page.$skipToken;
      if (typeof next === 'string' && next) {
        skipToken = next;
        continue;
      }
      if (String(page.resultTruncated) === 'true') throw new ArmError(`Resource Graph truncated the result after ${rows.length} of ${String(page.totalRecords ?? '?')} rows and gave no $skipToken`, 'ResultTruncated');
      return rows;
    }
  }

  private graphQueue: Promise<void> = Promise.resolve();

  /** Waits for the Resource Graph turn; returns its release. */
  private async graphTurn(): Promise<() => void> {
    let release!: () => void;
    const turn = new Promise<void>((r) => (release = r));
    const previous = this.graphQueue;
    this.graphQueue = previous.then(() => turn);
    await previous;
    return release;
  }

  /** Keeps Resource Graph's quota: none left means no query until it resets. */
  private noteGraphQuota(headers: PipelineResponse['headers']): void {
    const remaining = headers.get('x-ms-user-quota-remaining');
    if (remaining === undefined || !/^-?\d+$/.test(remaining) || Number(remaining) > 0) return;
    const resets = quotaResetMs(headers.get('x-ms-user-quota-resets-after'));
    if (resets !== undefined) this.graphPausedUntil = Math.max(this.graphPausedUntil, Date.now() + resets);
  }

  /** GET, or null when ARM says the resource does not exist. */
  async getOrNull(path: string, apiVersion: string): Promise<{ doc: ArmDoc; etag?: string } | null> {
    try {
      return await this.get(path, apiVersion);
    } catch (err) {
      if (err instanceof ArmError && err.status === 404) return null;
      throw err;
    }
  }

  /** Every item of a paged list (`value` + `nextLink`). */
  async list(path: string, apiVersion: string): Promise<ArmDoc[]> {
    const out: ArmDoc[] = [];
    let next: string | undefined = this.url(path, apiVersion);
    while (next) {
      const { doc } = await this.get(next, apiVersion);
      out.push(...(((doc.value as ArmDoc[] | undefined) ?? [])));
      next = typeof doc.nextLink === 'string' && doc.nextLink ? doc.nextLink : undefined;
    }
    return out;
  }

  /**
   * One POST action (Defender for Cloud's `initiate`), retried on 429 (after Retry-After), 5xx,
   * network errors and timeouts until `deadlineMs` has passed: asking again asks for the same
   * thing. ARM's refusals (4xx) are thrown at once with its code. Returns the answer and ARM's ids
   * of the call (`x-ms-request-id`, `x-ms-correlation-request-id`: what the activity log shows).
   */
  async post(path: string, apiVersion: string, body: unknown, deadlineMs: number): Promise<{ status: number; doc: ArmDoc; requestId?: string; correlationId?: string }> {
    const deadline = Date.now() + deadlineMs;
    for (let attempt = 1; ; attempt++) {
      try {
        this.stats.actions++;
        const res = await this.send('POST', this.url(path, apiVersion), { body });
        const requestId = res.headers.get('x-ms-request-id') ?? undefined;
        const correlationId = res.headers.get('x-ms-correlation-request-id') ?? undefined;
        return { status: res.status, doc: res.json ?? {}, ...(requestId ? { requestId } : {}), ...(correlationId ? { correlationId } : {}) };
      } catch (err) {
        if (classify(err) !== 'retry') throw err;
        const wait = backoff(attempt, err instanceof ArmError ? err.retryAfterMs : undefined);
        if (Date.now() + wait > deadline) throw err;
        this.stats.retries++;
        this.opts.log('azure: action retried', { path: path.split('/').slice(-2).join('/'), code: err instanceof ArmError ? err.code : undefined, waitMs: Math.round(wait) });
        await this.opts.sleep(wait);
      }
    }
  }

  /**
   * One PUT, followed to its terminal state. Throws ArmError with ARM's code on refusal or when
   * the operation ends Failed / Canceled. The conditions go on the PUT alone: the operation's polls
   * carry none (an operation has no ETag, and the resource's changes with the write).
   */
  async put(path: string, apiVersion: string, body: unknown, conditions: { ifMatch?: string; ifNoneMatch?: string }, lroDeadline: number): Promise<void> {
    this.stats.puts++;
    const headers: Record<string, string> = {};
    if (conditions.ifMatch) headers['if-match'] = conditions.ifMatch;
    if (conditions.ifNoneMatch) headers['if-none-match'] = conditions.ifNoneMatch;
    const res = await this.send('PUT', this.url(path, apiVersion), { body, headers });
    await this.follow(path, apiVersion, res, lroDeadline);
  }

  /** One DELETE, followed to its end. Returns false when there was nothing to delete (204). */
  async delete(path: string, apiVersion: string, lroDeadline: number): Promise<boolean> {
    this.stats.deletes++;
    const res = await this.send('DELETE', this.url(path, apiVersion));
    if (res.status === 204) return false;
    await this.follow(path, apiVersion, res, lroDeadline, true);
    return true;
  }

  /** Waits for a write's long-running operation to end; throws its error unless it Succeeded. */
  private async follow(path: string, apiVersion: string, res: { status: number; headers: PipelineResponse['headers']; json: ArmDoc | undefined }, deadline: number, deleting = false): Promise<void> {
    const asyncOp = res.headers.get('azure-asyncoperation');
    const location = res.headers.get('location');
    const name = path.split('/').pop();
    let firstWait: string | null | undefined = res.headers.get('retry-after');
    const waitNext = async () => {
      const ra = firstWait && /^\d+$/.test(firstWait) ? Number(firstWait) * 1000 : undefined;
      firstWait = null;
      const wait = Math.max(this.opts.pollMs, ra ?? 0);
      if (Date.now() + wait > deadline) throw new ArmError(`${name}: the operation did not finish before the deadline`, 'OperationTimeout');
      await this.opts.sleep(wait);
    };
    const poll = async (url: string): Promise<{ status: number; headers: PipelineResponse['headers']; json: ArmDoc | undefined } | null> => {
      try {
        return await this.send('GET', url);
      } catch (err) {
        // A poll that fails transiently is polled again; the operation goes on regardless.
        if (classify(err) === 'retry') return null;
        throw err;
      }
    };
    if (asyncOp) {
      for (;;) {
        const r = await poll(asyncOp);
        const status = String(r?.json?.status ?? 'InProgress');
        if (TERMINAL.has(status.toLowerCase())) {
          if (status.toLowerCase() === 'succeeded') return;
          const error = (r?.json?.error ?? {}) as { code?: string; message?: string };
          this.answered('write', 'failed');
          if (status.toLowerCase() === 'canceled') this.stats.operationsCanceled++;
          else this.stats.operationsFailed++;
          throw new ArmError(`${name}: the operation ended ${status}: ${error.code ?? status} ${error.message ?? ''}`.trim(), error.code ?? status, undefined, undefined, status.charAt(0).toUpperCase() + status.slice(1).toLowerCase());
        }
        if (r?.headers.get('retry-after')) firstWait = r.headers.get('retry-after');
        await waitNext();
      }
    }
    if (location && res.status === 202) {
      for (;;) {
        await waitNext();
        const r = await poll(location);
        if (r && r.status !== 202) return;
      }
    }
    if (deleting) return;
    // No operation to follow: the resource's provisioningState tells.
    let state = String(res.json?.properties?.provisioningState ?? 'Succeeded');
    while (!TERMINAL.has(state.toLowerCase())) {
      await waitNext();
      const r = await poll(this.url(path, apiVersion));
      state = String(r?.json?.properties?.provisioningState ?? state);
    }
    if (state.toLowerCase() !== 'succeeded') {
      this.answered('write', 'failed');
      this.stats.operationsFailed++;
      throw new ArmError(`${name}: provisioningState ${state}`, state, undefined, undefined, state);
    }
  }
}
