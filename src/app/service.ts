/** Something Portico runs: a listener, a health monitor, the admin API. Constructors do no I/O. */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  /** Stop accepting; finish in-flight work for up to graceMs, then cut. */
  stop(graceMs: number): Promise<void>;
}

/** A service that listens on an address; the bound port is known after start (port 0 in tests). */
export interface ListenerService extends Service {
  readonly protocol: string;
  readonly address: { host: string; port: number };
}
