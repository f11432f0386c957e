/**
 * Values kept across a reload while the spec they were built from is unchanged: a pool's
 * persistence (its stick tables), a listener's rate limiter (its buckets), the TLS section an
 * https listener was built from. Specs are compared by their JSON text, so a spec is plain
 * configuration data (what the config loader produced).
 */
export class Reuse<K, T> {
  private constructor(private readonly kept: KeptStore<K, T>) {}

  /** Keyed by names (pools, listeners): an entry lives until it is replaced or deleted. */
  static byName<T>(): Reuse<string, T> {
    return new Reuse<string, T>(new Map());
  }

  /** Keyed by objects (listeners): an entry goes with its key. */
  static byObject<K extends object, T>(): Reuse<K, T> {
    return new Reuse<K, T>(new WeakMap<K, Kept<T>>());
  }

  /** The value kept under `key` when it was built from the same `spec`; otherwise `build()`'s, kept from now on. */
  get(key: K, spec: unknown, build: () => T): T {
    const text = JSON.stringify(spec);
    const was = this.kept.get(key);
    if (was !== undefined && was.spec === text) return was.value;
    const value = build();
    this.kept.set(key, { spec: text, value });
    return value;
  }

  /** Keep `value` under `key`, built from `spec` (replacing what was kept). */
  set(key: K, spec: unknown, value: T): void {
    this.kept.set(key, { spec: JSON.stringify(spec), value });
  }

  /** Whether what is kept under `key` was built from `spec`. */
  holds(key: K, spec: unknown): boolean {
    return this.kept.get(key)?.spec === JSON.stringify(spec);
  }

  /** Forget `key` (its spec went: the next get builds anew). */
  delete(key: K): void {
    this.kept.delete(key);
  }
}

interface Kept<T> {
  readonly spec: string;
  readonly value: T;
}

interface KeptStore<K, T> {
  get(key: K): Kept<T> | undefined;
  set(key: K, kept: Kept<T>): unknown;
  delete(key: K): unknown;
}
