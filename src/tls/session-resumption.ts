/**
 * TLS session resumption for an https listener: a session cache (resumption by session id,
 * TLS 1.2) and the session ticket key (resumption by ticket, TLS 1.2 and 1.3).
 *
 * `sessionCache: local`: both live in this process. `shared`: both go through the StateStore,
 * so that any Portico node resumes a session another one started. The cache is a StickTable
 * (bounded, idle TTL) written through to the store and read through on a local miss. Ticket
 * keys are per rotation period: the key of period N is made once (by the first node that
 * needs it, elected with an atomic `incr`) and read by every other node.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { StickTable } from '../persistence/stick-table.js';
import type { StateStore } from '../store/state-store.js';

/** Node's ticket keys: 16 bytes of key name, 16 of HMAC key, 16 of AES key. */
export const TICKET_KEY_BYTES = 48;

export interface ResumptionOptions {
  /** Names the listener's keys in the store. */
  readonly listener: string;
  readonly sessionTimeoutMs: number;
  readonly cacheSize: number;
  readonly rotationMs: number;
  readonly clock: Clock;
  /** The shared store (`sessionCache: shared`); undefined = this process only. */
  readonly store?: StateStore | undefined;
  /** Told of store failures (the listener logs them); resumption then degrades to a full handshake. */
  readonly onError?: ((what: string, err: unknown) => void) | undefined;
}

export class SessionResumption {
  private readonly table: StickTable;
  private readonly o: ResumptionOptions;
  private timer: NodeJS.Timeout | undefined;
  private applyKey: ((key: Buffer) => void) | undefined;
  private epoch = -1;
  /** The ticket key in force. */
  key: Buffer = randomBytes(TICKET_KEY_BYTES);

  constructor(o: ResumptionOptions) {
    this.o = o;
    this.table = new StickTable({
      namespace: `tls-session:${o.listener}:`,
      ttlMs: o.sessionTimeoutMs,
      size: o.cacheSize,
      clock: o.clock,
      store: o.store,
      readThrough: o.store !== undefined,
      storeTimeoutMs: 250,
      onStoreError: (err) => o.onError?.('session cache', err),
    });
  }

  get shared(): boolean {
    return this.o.store !== undefined;
  }

  /** Sessions held in this process. */
  get size(): number {
    return this.table.size;
  }

  /**
   * tls.Server 'newSession': keep the session; the handshake goes on when it is stored locally.
   * A TLS 1.3 session is not kept: OpenSSL reports one per ticket it sends, but TLS 1.3 resumes
   * only from the ticket (which holds the session), never by id, so it would only fill the cache.
   */
  readonly onNewSession = (id: Buffer, data: Buffer, done: () => void): void => {
    if (sessionVersion(data) !== TLS13) this.table.set(id.toString('hex'), data.toString('base64'));
    done();
  };

  /** tls.Server 'resumeSession': the session for an offered id, from this process or the store. */
  readonly onResumeSession = (id: Buffer, done: (err: Error | null, data?: Buffer | null) => void): void => {
    const v = this.table.get(id.toString('hex'));
    if (typeof v === 'string') return done(null, Buffer.from(v, 'base64'));
    if (v === undefined) return done(null, null);
    v.then(
      (s) => done(null, s === undefined ? null : Buffer.from(s, 'base64')),
      () => done(null, null),
    );
  };

  /**
   * Obtain the ticket key of the current period, give it to `apply`, and replace it at every
   * period boundary. Resolves once the first key is applied.
   */
  async start(apply: (key: Buffer) => void): Promise<void> {
    this.applyKey = apply;
    await this.rotate();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.applyKey = undefined;
  }

  private readonly rotate = async (): Promise<void> => {
    const now = this.o.clock.now();
    const epoch = Math.floor(now / this.o.rotationMs);
    if (epoch !== this.epoch) {
      const key = await this.keyFor(epoch);
      this.epoch = epoch;
      this.key = key;
      this.applyKey?.(key);
    }
    if (this.applyKey === undefined) return;
    const next = (epoch + 1) * this.o.rotationMs - this.o.clock.now();
    this.timer = setTimeout(() => void this.rotate(), Math.max(10, next));
    this.timer.unref();
  };

  /** The key of a rotation period: random here, or the one every node shares. */
  private async keyFor(epoch: number): Promise<Buffer> {
    const store = this.o.store;
    if (store === undefined) return randomBytes(TICKET_KEY_BYTES);
    const name = `tls-ticket-key:${this.o.listener}:${epoch}`;
    const ttl = 3 * this.o.rotationMs;
    try {
      const have = await store.get(name);
      if (have !== undefined) return decodeKey(have);
      if ((await store.incr(name + ':maker', 1, ttl)) === 1) {
        const key = randomBytes(TICKET_KEY_BYTES);
        await store.set(name, key.toString('base64'), ttl);
        return key;
      }
      // Another node makes it: wait for it (bounded).
      for (let i = 0; i < 40; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const v = await store.get(name);
        if (v !== undefined) return decodeKey(v);
      }
      throw new Error(`ticket key ${name} did not appear in the store`);
    } catch (err) {
      this.o.onError?.('ticket key', err);
      return randomBytes(TICKET_KEY_BYTES);
    }
  }
}

const TLS13 = 0x0304;

/**
 * The protocol version of an OpenSSL session (its DER: SEQUENCE { INTEGER 1, INTEGER version, ... }),
 * or 0 when the bytes are not laid out so.
 */
export function sessionVersion(der: Uint8Array): number {
  if (der.length < 4 || der[0] !== 0x30) return 0;
  const l = der[1]!;
  const at = l < 0x80 ? 2 : 2 + (l & 0x7f);
  if (der.length < at + 7) return 0;
  if (der[at] !== 0x02 || der[at + 1] !== 0x01 || der[at + 2] !== 0x01 || der[at + 3] !== 0x02 || der[at + 4] !== 0x02) return 0;
  return (der[at + 5]! << 8) | der[at + 6]!;
}

function decodeKey(v: string): Buffer {
  const b = Buffer.from(v, 'base64');
  if (b.length !== TICKET_KEY_BYTES) throw new Error(`ticket key of ${b.length} bytes in the store`);
  return b;
}
