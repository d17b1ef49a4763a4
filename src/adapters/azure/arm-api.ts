// ARM's API versions and the client's shapes (options, counters, documents).
import type { TokenCredential } from '@azure/identity';

export const NETWORK_API = '2024-05-01';
export const COMPUTE_API = '2024-07-01';
export const RESOURCES_API = '2021-04-01';
/** Azure Resource Graph (stable; the spec's QueryRequest / QueryResponse, paged by `$skipToken`). */
export const RESOURCE_GRAPH_API = '2022-10-01';
export const RESOURCE_GRAPH_PATH = '/providers/Microsoft.ResourceGraph/resources';
/** Rows per Resource Graph page: the service's maximum `$top`. */
export const RESOURCE_GRAPH_PAGE = 1000;
/** Microsoft.Security's jitNetworkAccessPolicies (Defender for Cloud's JIT VM access). */
export const SECURITY_API = '2020-01-01';

export interface ArmClientOptions {
  credential: TokenCredential;
  endpoint: string;
  caCert?: string;
  /** How long one HTTP exchange may go unanswered. */
  timeoutMs: number;
  /** Polling interval of long-running operations (ARM's Retry-After wins when it asks for more). */
  pollMs: number;
  /** How long a read keeps retrying 429 / 5xx / network errors. */
  readDeadlineMs: number;
  /** Reads in flight at once (ARM throttles reads per principal). */
  readConcurrency: number;
  sleep: (ms: number) => Promise<void>;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface ArmStats {
  puts: number;
  deletes: number;
  /** POST actions (Defender for Cloud's initiate). */
  actions: number;
  reads: number;
  readRetries: number;
  retries: number;
  conflicts409: number;
  preconditionFailed412: number;
  throttled429: number;
  serverErrors: number;
  timeouts: number;
  operationsFailed: number;
  operationsCanceled: number;
  /** Resource Graph requests (one per page, retries included). */
  graphQueries: number;
  /** Times a Resource Graph query waited for the user quota to reset (x-ms-user-quota-remaining: 0). */
  graphQuotaWaits: number;
}

export interface ArmDoc {
  id?: string;
  name?: string;
  etag?: string;
  location?: string;
  properties?: Record<string, unknown>;
  [key: string]: unknown;
}
