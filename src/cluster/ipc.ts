import { isObject } from '../core/guards.js';

/**
 * One typed channel between the primary of `cluster.workers` and a worker, under the store, the
 * statistics and the configuration messages. Each of those is a named channel over the same
 * IPC port; a channel declares, per direction, the requests it sends with the type of their
 * answer, and its one-way notes. A request carries an id and is answered once: with the
 * handler's value, with its error (same name and message), or, on the caller's side, with a
 * timeout or the peer's end (every pending request is rejected when the port closes).
 * Messages go in order on a port, so a note sent before an answer arrives before it.
 */

/** The IPC port of one worker as each side sees it (process.send / process.on('message'), or cluster's Worker). */
export interface IpcPort {
  /** Throws when the channel is closed. */
  send(msg: unknown): void;
  onMessage(fn: (msg: unknown) => void): () => void;
  /** Told once when the peer is gone (its process exited, or the channel was cut). */
  onClose?(fn: () => void): () => void;
}

/** The requests one side sends, each with its answer's type. */
export type Calls = { readonly [name: string]: { readonly req: unknown; readonly res: unknown } };
/** The one-way notes one side sends. */
export type Notes = { readonly [name: string]: unknown };
/** What one side of a channel sends. */
export type Direction = { readonly calls: Calls; readonly notes: Notes };

/** No answer within the request's timeout. */
export class IpcTimeoutError extends Error {
  override readonly name = 'IpcTimeoutError';
}

/** The channel was closed, or the peer is gone, before the answer came. */
export class IpcClosedError extends Error {
  override readonly name = 'IpcClosedError';
}

type Envelope =
  | { readonly ch: string; readonly k: 'call'; readonly n: string; readonly id: number; readonly b: unknown }
  | { readonly ch: string; readonly k: 'ok'; readonly id: number; readonly b: unknown }
  | { readonly ch: string; readonly k: 'err'; readonly id: number; readonly e: { readonly name: string; readonly message: string } }
  | { readonly ch: string; readonly k: 'note'; readonly n: string; readonly b: unknown };

/** A message of channel `ch`, checked as far as the envelope goes; undefined for anything else. */
function envelope(raw: unknown, ch: string): Envelope | undefined {
  if (!isObject(raw) || raw['ch'] !== ch) return undefined;
  const k = raw['k'];
  const id = raw['id'];
  const n = raw['n'];
  if (k === 'note' && typeof n === 'string') return { ch, k, n, b: raw['b'] };
  if (typeof id !== 'number') return undefined;
  if (k === 'call' && typeof n === 'string') return { ch, k, n, id, b: raw['b'] };
  if (k === 'ok') return { ch, k, id, b: raw['b'] };
  const e = raw['e'];
  if (k === 'err' && isObject(e)) return { ch, k, id, e: { name: String(e['name']), message: String(e['message']) } };
  return undefined;
}

/** The error a handler threw, on the caller's side: RangeError and TypeError keep their class, others their name. */
function remoteError(e: { readonly name: string; readonly message: string }): Error {
  if (e.name === 'RangeError') return new RangeError(e.message);
  if (e.name === 'TypeError') return new TypeError(e.message);
  const err = new Error(e.message);
  if (e.name !== 'Error') err.name = e.name;
  return err;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  readonly timer: NodeJS.Timeout;
}

/**
 * One side of the channel `name` over `port`: it sends `Out` and is sent `In`. The other side
 * is a Channel<In, Out> of the same name.
 */
export class Channel<Out extends Direction, In extends Direction> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, (body: unknown) => unknown>();
  private readonly listeners = new Map<string, (body: unknown) => void>();
  private readonly offMessage: () => void;
  private readonly offClose: (() => void) | undefined;
  private closedBy: string | undefined;

  constructor(
    private readonly port: IpcPort,
    readonly name: string,
    /** false: a request waiting for its answer does not hold the process open (its timer is unref'd). */
    private readonly holdProcess = true,
  ) {
    this.offMessage = port.onMessage((raw) => this.receive(raw));
    this.offClose = port.onClose?.(() => this.close('the peer is gone'));
  }

  /** True once close() was called or the peer is gone. */
  get closed(): boolean {
    return this.closedBy !== undefined;
  }

  /**
   * Send request `name` and resolve with its answer. Rejects with the handler's error, with an
   * IpcTimeoutError after `timeoutMs`, or with an IpcClosedError when the channel closes first.
   */
  call<K extends keyof Out['calls'] & string>(name: K, req: Out['calls'][K]['req'], timeoutMs: number): Promise<Out['calls'][K]['res']> {
    if (this.closedBy !== undefined) return Promise.reject(new IpcClosedError(`${this.name} ${name}: ${this.closedBy}`));
    const id = this.nextId++;
    return new Promise<Out['calls'][K]['res']>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new IpcTimeoutError(`${this.name} ${name}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!this.holdProcess) timer.unref();
      this.pending.set(id, { resolve: (v) => resolve(v as Out['calls'][K]['res']), reject, timer });
      try {
        this.port.send({ ch: this.name, k: 'call', n: name, id, b: req } satisfies Envelope);
      } catch (err) {
        this.settle(id, undefined, new IpcClosedError(`${this.name} ${name}: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
  }

  /** Send note `name`; false when the channel is closed (the peer is gone). */
  notify<K extends keyof Out['notes'] & string>(name: K, body: Out['notes'][K]): boolean {
    if (this.closedBy !== undefined) return false;
    return this.trySend({ ch: this.name, k: 'note', n: name, b: body });
  }

  /** Answer request `name` with `fn` (its value, or what it throws). One handler per request. */
  handle<K extends keyof In['calls'] & string>(name: K, fn: (req: In['calls'][K]['req']) => In['calls'][K]['res'] | Promise<In['calls'][K]['res']>): this {
    this.handlers.set(name, (body) => fn(body as In['calls'][K]['req']));
    return this;
  }

  /** Be told of note `name`. One listener per note. */
  on<K extends keyof In['notes'] & string>(name: K, fn: (body: In['notes'][K]) => void): this {
    this.listeners.set(name, (body) => fn(body as In['notes'][K]));
    return this;
  }

  /** Stop: the port's messages are no longer read, and every pending request is rejected. */
  close(reason = 'channel closed'): void {
    if (this.closedBy !== undefined) return;
    this.closedBy = reason;
    this.offMessage();
    this.offClose?.();
    for (const id of [...this.pending.keys()]) this.settle(id, undefined, new IpcClosedError(`${this.name}: ${reason}`));
  }

  private receive(raw: unknown): void {
    const m = envelope(raw, this.name);
    if (m === undefined) return;
    switch (m.k) {
      case 'ok':
        return this.settle(m.id, m.b, undefined);
      case 'err':
        return this.settle(m.id, undefined, remoteError(m.e));
      case 'note': {
        const fn = this.listeners.get(m.n);
        if (fn === undefined) return;
        try {
          fn(m.b);
        } catch {
          // a listener's fault is its own; the channel goes on
        }
        return;
      }
      case 'call':
        return this.answer(m.id, m.n, m.b);
    }
  }

  private answer(id: number, name: string, body: unknown): void {
    const fn = this.handlers.get(name);
    let p: Promise<unknown>;
    try {
      p = fn === undefined ? Promise.reject(new Error(`${this.name}: no handler for ${name}`)) : Promise.resolve(fn(body));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (b) => void this.trySend({ ch: this.name, k: 'ok', id, b }),
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        this.trySend({ ch: this.name, k: 'err', id, e: { name: e.name, message: e.message } });
      },
    );
  }

  private settle(id: number, value: unknown, err: Error | undefined): void {
    const p = this.pending.get(id);
    if (p === undefined) return; // timed out already, or not ours
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (err === undefined) p.resolve(value);
    else p.reject(err);
  }

  private trySend(m: Envelope): boolean {
    if (this.closedBy !== undefined) return false;
    try {
      this.port.send(m);
      return true;
    } catch {
      return false; // the peer is gone; its end closes this channel
    }
  }
}
