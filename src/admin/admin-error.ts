import { LbError } from '../core/errors.js';

/** The codes the admin API answers with; part of the API, never renamed. */
export type AdminErrorCode =
  | 'LB_ADMIN_BAD_REQUEST'
  | 'LB_ADMIN_INVALID'
  | 'LB_ADMIN_UNAUTHORIZED'
  | 'LB_ADMIN_FORBIDDEN'
  | 'LB_ADMIN_NOT_FOUND'
  | 'LB_ADMIN_METHOD_NOT_ALLOWED'
  | 'LB_ADMIN_CONFLICT'
  | 'LB_ADMIN_TOO_LARGE'
  | 'LB_ADMIN_UNSUPPORTED_MEDIA_TYPE'
  | 'LB_CONFIG_INVALID'
  | 'LB_ADMIN_JOURNAL'
  | 'LB_ADMIN_INTERNAL';

/** One problem with a request body or a configuration, at a key. */
export interface AdminIssue {
  /** Where: `weight`, `servers[2].address`, or `FILE:LINE:COL path.to.key` for a configuration file. */
  readonly path: string;
  readonly message: string;
}

/**
 * An admin API refusal: a stable code, the HTTP status it is answered with, a message for
 * the operator and, for validation failures, every issue found.
 */
export class AdminError extends LbError {
  readonly code: AdminErrorCode;
  readonly source = 'downstream';
  readonly status: number;
  readonly issues: readonly AdminIssue[] | undefined;

  constructor(status: number, code: AdminErrorCode, message: string, issues?: readonly AdminIssue[]) {
    super(message);
    this.status = status;
    this.code = code;
    this.issues = issues;
  }

  /** The JSON body: `{"error":{"code","message","issues"?}}`. */
  toJSON(): { error: { code: string; message: string; issues?: readonly AdminIssue[] } } {
    const error: { code: string; message: string; issues?: readonly AdminIssue[] } = { code: this.code, message: this.message };
    if (this.issues !== undefined) error.issues = this.issues;
    return { error };
  }
}

export const badRequest = (message: string, issues?: readonly AdminIssue[]): AdminError =>
  new AdminError(400, 'LB_ADMIN_BAD_REQUEST', message, issues);
export const invalid = (message: string, issues: readonly AdminIssue[]): AdminError => new AdminError(422, 'LB_ADMIN_INVALID', message, issues);
export const notFound = (message: string): AdminError => new AdminError(404, 'LB_ADMIN_NOT_FOUND', message);
export const conflict = (message: string): AdminError => new AdminError(409, 'LB_ADMIN_CONFLICT', message);
