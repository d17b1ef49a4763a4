// Every rejection is a typed error: what was wrong, what is allowed, and an example to copy.

export type JitErrorCode =
  | 'parse'
  | 'unknown_command'
  | 'bad_duration'
  | 'bad_port'
  | 'bad_source'
  | 'unknown_target'
  | 'port_not_allowed'
  | 'duration_too_long'
  | 'duration_too_short'
  | 'source_not_allowed'
  | 'source_required'
  | 'forbidden'
  | 'not_found'
  | 'invalid_transition'
  | 'already_decided'
  | 'self_approval'
  | 'not_approver'
  | 'conflict'
  | 'link_expired'
  | 'network'
  | 'justification_required'
  | 'bad_justification'
  | 'bad_start'
  | 'rate_limited'
  | 'limit_reached';

export class JitError extends Error {
  readonly code: JitErrorCode;
  /** A command (without the platform prefix) the user can type instead, if there is one. */
  readonly example: string | undefined;

  constructor(code: JitErrorCode, message: string, example?: string) {
    super(message);
    this.name = 'JitError';
    this.code = code;
    this.example = example;
  }

  /** The message as a user reads it, with the example under the platform's prefix (`/jit`, `jit`). */
  format(prefix = '/jit'): string {
    return this.example ? `${this.message}; try ${prefix} ${this.example}` : this.message;
  }
}

export const isJitError = (e: unknown): e is JitError => e instanceof JitError;
