/** Something Portico runs: a listener, a health monitor, the admin API. Constructors do no I/O. */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  /** Stop accepting; finish in-flight work for up to graceMs, then cut. */
  stop(graceMs: number): Promise<void>;
}

export type { ListenerService } from '../listener/kind.js';
