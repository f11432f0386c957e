export type ErrorSource = 'downstream' | 'upstream' | 'internal' | 'config';

/**
 * Every error Portico throws (configuration, admin API, discovery, balancer options) has a stable
 * code; codes are part of the API and never renamed. How a request or connection ended on the
 * data path is an `Outcome` (core/outcome.ts), not an error.
 */
export abstract class LbError extends Error {
  abstract readonly code: `LB_${string}`;
  abstract readonly source: ErrorSource;
  /** Safe to try the request again on another server. */
  readonly retryable: boolean = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
