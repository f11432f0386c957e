/**
 * The cache phase (SPEC §11): a route's `cache: NAME`. The rules are src/cache's (policy.ts over
 * http-cache-semantics, the memory store, request coalescing); this module is the glue to the
 * exchange:
 *
 *   onRequest       look up: a fresh object (or one that may be served stale while it is
 *                   refreshed) is answered from the cache; a miss joins the fetch in progress for
 *                   its key, or becomes that fetch; an expired object with a validator is
 *                   revalidated (its validators go to the server)
 *   upstreamHead    If-None-Match / If-Modified-Since of a revalidation (the client's own
 *                   conditional fields are answered by Portico, never forwarded on a GET)
 *   onResponseHead  a 304 to a revalidation refreshes the stored head and is answered from the
 *                   cache; a 5xx with stale-if-error permission is answered stale; otherwise the
 *                   response is stored if RFC 9111 and Portico's rules allow it
 *   onResponseBody  the body is kept as it streams to the client (and to the requests that joined)
 *   onFailure       stale-if-error on a connect failure or a timeout
 *   onDone          an unsafe method's success invalidates its target (RFC 9111 §4.4); a fetch
 *                   that did not complete stores nothing
 */
import type { Cache, CacheResult, CacheSet } from '../../../cache/cache.js';
import type { Fill, FillWatcher } from '../../../cache/fill.js';
import { parseVary, primaryKey, variantKey } from '../../../cache/key.js';
import { invalidatedTargets, policyNow, storeDecision, type Fields, type RequestHead as CacheRequest, type StoredPolicy } from '../../../cache/policy.js';
import type { SharedObject } from '../../../cache/shared.js';
import type { CacheObject, MemoryStore } from '../../../cache/store.js';
import type { Outcome } from '../../../core/outcome.js';
import { STATUS_CODES } from 'node:http';
import { BackgroundFetch, type BackgroundSink } from '../background-fetch.js';
import type { Exchange } from '../exchange.js';
import { CLIENT_CERT, FORWARDING } from '../headers.js';
import type { ResponseHead } from '../parse-response.js';
import type { Answer, AnswerSink, AnswerVariants, HttpPhase, RequestDecision, StreamedAnswer } from '../phases.js';

/** The status line of an answer from the cache (the standard reason phrase; none for an unknown code). */
function statusLine(code: number): string {
  return 'HTTP/1.1 ' + code + ' ' + (STATUS_CODES[code] ?? '') + '\r\n';
}

/** Header fields a stored response is never answered with (hop-by-hop, framing, the cache's own). */
const NOT_REPLAYED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  'age',
  'cache-status',
]);

/** What the cache phase keeps for one request (on `ex.cacheState`). */
class CacheState {
  key = '';
  cache: Cache;
  req: CacheRequest;
  result: CacheResult = 'bypass';
  /** The Cache-Status parameters after `portico; `. */
  status = '';
  /** An expired object being revalidated (or kept for stale-if-error). */
  stale: CacheObject | undefined = undefined;
  /** The fetch this request makes for its key (the one that coalesced requests wait on). */
  fill: Fill | undefined = undefined;
  policy: StoredPolicy | undefined = undefined;
  storing = false;
  /** The object came from the shared tier on this request. */
  fromShared = false;

  constructor(cache: Cache, req: CacheRequest) {
    this.cache = cache;
    this.req = req;
  }
}

/** Request header fields as a record (lower-case names, repeated fields joined). */
function requestFields(ex: Exchange): Fields {
  const out: Fields = {};
  const n = ex.lnames;
  const v = ex.values;
  for (let i = 0; i < n.length; i++) {
    const k = n[i]!;
    const prev = out[k];
    out[k] = prev === undefined ? v[i]! : k === 'cookie' ? prev + '; ' + v[i]! : prev + ', ' + v[i]!;
  }
  out['host'] = ex.host;
  return out;
}

function responseFields(r: ResponseHead): Fields {
  const out: Fields = {};
  for (let i = 0; i < r.lnames.length; i++) {
    const k = r.lnames[i]!;
    const prev = out[k];
    out[k] = prev === undefined ? r.values[i]! : prev + ', ' + r.values[i]!;
  }
  return out;
}

/** RFC 9110 §8.8.3.2: weak comparison of entity tags. */
function etagMatches(ifNoneMatch: string, etag: string | undefined): boolean {
  if (etag === undefined) return false;
  const bare = (t: string) => (t.startsWith('W/') ? t.slice(2) : t).trim();
  const want = bare(etag);
  for (const t of ifNoneMatch.split(',')) {
    const s = t.trim();
    if (s === '*' || bare(s) === want) return true;
  }
  return false;
}

/** RFC 9110 §13.1.2/§13.1.3: the client's conditional GET is satisfied by the stored response. */
function notModified(req: Fields, res: Fields): boolean {
  const inm = req['if-none-match'];
  if (inm !== undefined) return etagMatches(inm, res['etag']);
  const ims = req['if-modified-since'];
  const lm = res['last-modified'];
  if (ims === undefined || lm === undefined) return false;
  const a = Date.parse(ims);
  const b = Date.parse(lm);
  return Number.isFinite(a) && Number.isFinite(b) && b <= a;
}

/** A single satisfiable byte range of `length` (RFC 9110 §14.1.2), 'none' for no Range, 'multi' for what the cache passes on. */
function byteRange(value: string | undefined, length: number): { start: number; end: number } | 'none' | 'multi' | 'unsatisfiable' {
  if (value === undefined) return 'none';
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (m === null) return 'multi';
  const [, a, b] = m;
  if (a === '' && b === '') return 'multi';
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, length - n);
    end = length - 1;
  } else {
    start = Number(a);
    end = b === '' ? length - 1 : Math.min(Number(b), length - 1);
    if (b !== '' && Number(b) < start) return 'multi';
  }
  if (start >= length) return 'unsatisfiable';
  return { start, end };
}

/** The body of a stored object (or a slice of it), sent with back-pressure. */
class StoredBody {
  private i = 0;
  private off: number;
  private left: number;
  private sink: AnswerSink | undefined;

  constructor(
    private readonly chunks: readonly Buffer[],
    start: number,
    length: number,
  ) {
    this.off = start;
    this.left = length;
  }

  start(sink: AnswerSink): void {
    this.sink = sink;
    this.pump();
  }

  resume(): void {
    this.pump();
  }

  cancel(): void {
    this.sink = undefined;
  }

  private pump(): void {
    const sink = this.sink;
    if (sink === undefined) return;
    const chunks = this.chunks;
    while (this.left > 0 && this.i < chunks.length) {
      const c = chunks[this.i]!;
      if (this.off >= c.length) {
        this.off -= c.length;
        this.i++;
        continue;
      }
      const n = Math.min(c.length - this.off, this.left);
      const part = this.off === 0 && n === c.length ? c : c.subarray(this.off, this.off + n);
      this.left -= n;
      this.off = 0;
      this.i++;
      if (!sink.answerData(part) && this.left > 0) return;
    }
    this.sink = undefined;
    sink.answerEnd();
  }
}

/**
 * Bodies up to this size are sent joined to their head, in one buffer (a hit's `wire`); larger
 * ones are written after the head, as they are stored (the copy into one buffer would cost more
 * than the second write saves).
 */
const WIRE_MAX_BODY = 64 * 1024;

class StoredAnswer implements StreamedAnswer, AnswerVariants {
  readonly sized = true;
  /** Itself when the answer is the object's whole body (its compressed variants may stand in). */
  readonly variants: AnswerVariants | undefined;
  constructor(
    readonly status: number,
    private readonly headText: string,
    readonly hasBody: boolean,
    private readonly body: StoredBody | undefined,
    private readonly whole?: { readonly store: MemoryStore; readonly o: CacheObject },
    /** A plain hit (CachePhase.plainHit): its head is kept on the object, so it may go out as one buffer. */
    private readonly plain = false,
  ) {
    this.variants = whole === undefined ? undefined : this;
  }
  /**
   * A plain hit's head, blank line and body in one buffer: the one kept on the object while the
   * head is the same (every hit of the same second, on the same route), else made now and kept
   * (the body then lives in it: the object holds its bytes once).
   */
  wire(): Buffer | undefined {
    const w = this.whole;
    if (!this.plain || w === undefined) return undefined;
    const o = w.o;
    const kept = o.wire;
    if (kept !== undefined && kept.head === this.headText) return kept.buf;
    if (o.bodyLength > WIRE_MAX_BODY) return undefined;
    const headLength = this.headText.length + 2;
    // Not from the shared pool: the body becomes a view of this buffer, which must not pin a pool slab.
    const buf = Buffer.allocUnsafeSlow(headLength + o.bodyLength);
    buf.write(this.headText, 0, 'latin1');
    buf[headLength - 2] = 13;
    buf[headLength - 1] = 10;
    let at = headLength;
    for (const c of o.body) at += c.copy(buf, at);
    o.adoptWire(this.headText, buf);
    return buf;
  }
  withHead(head: string): StreamedAnswer {
    return new StoredAnswer(this.status, head, this.hasBody, this.body, this.whole, this.plain);
  }
  variant(name: string): Buffer | undefined {
    return this.whole?.o.variants?.get(name);
  }
  keepVariant(name: string, body: Buffer): void {
    const w = this.whole;
    if (w !== undefined) w.store.addVariant(w.o, name, body);
  }
  head(): string {
    return this.headText;
  }
  start(sink: AnswerSink): void {
    if (this.body === undefined) sink.answerEnd();
    else this.body.start(sink);
  }
  resume(): void {
    this.body?.resume();
  }
  cancel(): void {
    this.body?.cancel();
  }
}

/**
 * A request answered from a fetch in progress for its key (coalesced): what arrived so far, then
 * the rest as it comes. A joined client that reads slower than the server sends is cut once more
 * than the cache's object limit waits for it, so that it cannot hold unbounded memory.
 */
class JoinedAnswer implements StreamedAnswer, FillWatcher {
  private sink: AnswerSink | undefined;
  private waiting = 0;
  readonly hasBody: boolean;
  readonly sized: boolean;

  constructor(
    readonly status: number,
    private readonly headText: string,
    private readonly fill: Fill,
    private readonly limit: number,
    head: boolean,
    sized: boolean,
  ) {
    this.hasBody = !head;
    this.sized = sized;
  }
  head(): string {
    return this.headText;
  }
  start(sink: AnswerSink): void {
    this.sink = sink;
    if (!this.fill.join(this)) sink.answerAbort();
  }
  resume(): void {
    this.waiting = 0;
  }
  cancel(): void {
    this.sink = undefined;
    this.fill.leave(this);
  }
  fillHead(): void {}
  fillData(chunk: Buffer): void {
    const sink = this.sink;
    if (sink === undefined) return;
    if (!sink.answerData(chunk)) {
      this.waiting += chunk.length;
      if (this.waiting > this.limit) {
        this.cancel();
        sink.answerAbort();
      }
    }
  }
  fillEnd(): void {
    const sink = this.sink;
    this.sink = undefined;
    sink?.answerEnd();
  }
  fillAbort(): void {
    const sink = this.sink;
    this.sink = undefined;
    sink?.answerAbort();
  }
}

/** What a lookup in the shared tier found, as the value a waiting request resumes with. */
class SharedAnswer {
  constructor(readonly found: SharedObject | undefined) {}
}

function asSharedAnswer(found: SharedObject | undefined): SharedAnswer {
  return new SharedAnswer(found);
}

/** Resolves when a fill's head is known (or the fill failed): a coalesced request then decides. */
class FillWaiter implements FillWatcher {
  readonly promise: Promise<Fill | undefined>;
  private resolve!: (f: Fill | undefined) => void;
  constructor(private readonly fill: Fill) {
    this.promise = new Promise((r) => (this.resolve = r));
  }
  fillHead(): void {
    this.fill.leave(this);
    this.resolve(this.fill);
  }
  fillData(): void {}
  fillEnd(): void {
    this.resolve(this.fill);
  }
  fillAbort(): void {
    this.resolve(undefined);
  }
}

export interface CachePhaseOptions {
  /** Monotonic ms (hit-for-miss, keep). */
  now?: () => number;
}

export class CachePhase implements HttpPhase {
  readonly name = 'cache';
  /** The client's validators are Portico's to answer; the revalidation's own go to the server. */
  readonly requestHeaders: readonly string[] = ['if-none-match', 'if-modified-since'];
  private readonly now: () => number;

  /** `cacheName` is looked up in `caches` per request, so a reload that replaces the cache needs no new phase. */
  constructor(
    private readonly caches: CacheSet,
    readonly cacheName: string,
    opts: CachePhaseOptions = {},
  ) {
    this.now = opts.now ?? (() => performance.now());
  }

  onRequest(ex: Exchange): RequestDecision {
    const cache = this.caches.get(this.cacheName);
    if (cache === undefined) return undefined;
    const target = ex.query === '' ? ex.path : ex.path + '?' + ex.query;
    const st = new CacheState(cache, { method: ex.method, url: target, headers: requestFields(ex) });
    ex.cacheState = st;
    const method = ex.method;
    if (method !== 'GET' && method !== 'HEAD') {
      st.result = 'bypass';
      st.status = 'fwd=method';
      return undefined;
    }
    st.key = primaryKey(ex.host, target);
    if (byteRange(st.req.headers['range'], Number.MAX_SAFE_INTEGER) === 'multi') {
      st.result = 'bypass';
      st.status = 'fwd=request; detail=range';
      return undefined;
    }
    if (cache.fills.isUncacheable(st.key, this.now())) {
      st.result = 'uncacheable';
      st.status = 'fwd=uri-miss';
      return undefined;
    }
    const o = cache.store.lookup(st.key, st.req.headers);
    if (o !== undefined) {
      const a = this.fromStored(ex, st, o);
      if (a !== undefined) return a;
    }
    if (method === 'HEAD') {
      st.result = 'miss';
      st.status = 'fwd=miss';
      // A HEAD is answered from a stored GET, which the shared tier may hold when memory does not.
      // No fill is begun: a HEAD's own response is never stored, so nothing waits on this one.
      const shared = cache.shared;
      if (shared !== undefined && o === undefined) return shared.find(st.key, st.req.headers).then(asSharedAnswer);
      return undefined;
    }
    const f = cache.fills.get(st.key);
    if (f !== undefined) {
      if (!f.joinable) {
        st.result = 'miss';
        st.status = 'fwd=miss';
        return undefined;
      }
      if (f.head !== undefined) return this.joinOrForward(ex, st, f);
      const w = new FillWaiter(f);
      f.join(w);
      return w.promise;
    }
    st.fill = cache.fills.begin(st.key, cache.spec.maxObjectSize);
    st.result = 'miss';
    st.status = st.stale === undefined ? 'fwd=miss' : 'fwd=stale';
    // Not in memory: the shared tier may have it. The fill is begun first, so that the requests for
    // this key that come meanwhile wait for this one lookup (and then find the object in memory).
    const shared = cache.shared;
    if (shared !== undefined && o === undefined) return shared.find(st.key, st.req.headers).then(asSharedAnswer);
    return undefined;
  }

  /**
   * A stored object found for the request: the answer when it may be used as it is (fresh, or
   * stale while it is refreshed); undefined when it must be revalidated first (it is kept in
   * `st.stale`).
   */
  private fromStored(ex: Exchange, st: CacheState, o: CacheObject): Answer | undefined {
    const use = o.policy.evaluate(st.req);
    if (use === 'fresh' && !st.fromShared) {
      const a = this.plainHit(ex, st, o);
      if (a !== undefined) return a;
    }
    if (use === 'fresh') return this.answerFrom(ex, st, o, 'hit', 'hit; ttl=' + Math.round(o.policy.lifetime() - o.policy.age()) + (st.fromShared ? '; detail=shared' : ''));
    if (use === 'stale-while-revalidate') {
      this.refresh(ex, st, o);
      return this.answerFrom(ex, st, o, 'stale', 'hit; ttl=' + Math.round(o.policy.lifetime() - o.policy.age()) + '; detail=stale-while-revalidate');
    }
    st.stale = o;
    return undefined;
  }

  onResume(ex: Exchange, value: unknown): Answer | undefined {
    const st = ex.cacheState as CacheState;
    const cache = st.cache;
    if (value instanceof SharedAnswer) {
      // This request's lookup in the shared tier: a copy found there is kept in memory, then used like a memory hit.
      const found = value.found;
      if (found === undefined) return undefined;
      const o = cache.store.insert(st.key, st.req.headers, found.policy, [found.body], found.body.length);
      if (o === undefined) return undefined;
      st.fromShared = true;
      const a = this.fromStored(ex, st, o);
      if (a !== undefined) return a;
      st.status = 'fwd=stale';
      return undefined;
    }
    // The fetch this request waited for has its head, or was given up: when a lookup in the shared
    // tier found the object instead (it is in memory now), answer from there.
    const f = value as Fill | undefined;
    if (f === undefined) {
      const o = cache.store.lookup(st.key, st.req.headers);
      if (o !== undefined && o.policy.evaluate(st.req) === 'fresh') return this.answerFrom(ex, st, o, 'hit', 'hit; ttl=' + Math.round(o.policy.lifetime() - o.policy.age()));
    }
    if (f === undefined || !f.joinable || f.head === undefined) {
      st.result = 'miss';
      st.status = 'fwd=miss';
      return undefined;
    }
    return this.joinOrForward(ex, st, f);
  }

  /** A fill whose head is known: join it when it will be stored and is this request's variant, else go to the server. */
  private joinOrForward(ex: Exchange, st: CacheState, f: Fill): Answer | undefined {
    const head = f.head!;
    if (variantKey(parseVary(head.headers['vary']), st.req.headers) !== f.variant) {
      st.result = 'miss';
      st.status = 'fwd=vary-miss';
      return undefined;
    }
    st.result = 'miss';
    st.status = 'fwd=miss; collapsed';
    ex.cacheStatus = st.status;
    st.cache.count('miss');
    const cl = head.headers['content-length'];
    let h = statusLine(head.status);
    h += this.replayHeaders(ex, head.headers);
    if (cl !== undefined) h += 'content-length: ' + cl + '\r\n';
    h += 'Age: 0\r\nCache-Status: portico; ' + st.status + '\r\n';
    return new JoinedAnswer(head.status, h, f, st.cache.spec.maxObjectSize, ex.method === 'HEAD', cl !== undefined);
  }

  upstreamHead(ex: Exchange): string {
    const st = ex.cacheState as CacheState | undefined;
    if (st === undefined) return '';
    if (st.stale !== undefined && ex.method === 'GET') {
      const v = st.stale.policy.validators();
      let h = '';
      if (v['if-none-match'] !== undefined) h += 'If-None-Match: ' + v['if-none-match'] + '\r\n';
      if (v['if-modified-since'] !== undefined) h += 'If-Modified-Since: ' + v['if-modified-since'] + '\r\n';
      return h;
    }
    if (ex.method === 'GET' || ex.method === 'HEAD') return '';
    // Another method's conditional fields are the server's to evaluate (If-None-Match on a PUT ...).
    const r = st.req.headers;
    let h = '';
    if (r['if-none-match'] !== undefined) h += 'If-None-Match: ' + r['if-none-match'] + '\r\n';
    if (r['if-modified-since'] !== undefined) h += 'If-Modified-Since: ' + r['if-modified-since'] + '\r\n';
    return h;
  }

  onResponseHead(ex: Exchange, res: ResponseHead): string | Answer {
    const st = ex.cacheState as CacheState | undefined;
    if (st === undefined || ex.method !== 'GET') {
      return st === undefined || st.status === '' ? '' : 'Cache-Status: portico; ' + st.status + '\r\n';
    }
    const cache = st.cache;
    const fields = responseFields(res);
    const stale = st.stale;
    if (stale !== undefined && res.status === 304) {
      const r = stale.policy.revalidated(st.req, { status: 304, headers: fields });
      if (!r.modified) {
        cache.refresh(stale, r.policy);
        this.endFill(st);
        return this.answerFrom(ex, st, stale, 'revalidated', 'fwd=stale; fwd-status=304');
      }
    }
    if (stale !== undefined && res.status >= 500 && stale.policy.staleIfError()) {
      this.endFill(st);
      return this.answerFrom(ex, st, stale, 'stale', 'fwd=stale; fwd-status=' + res.status + '; detail=stale-if-error');
    }
    const d = storeDecision(st.req, { status: res.status, headers: fields });
    const tooLarge = res.contentLength > cache.spec.maxObjectSize;
    if ('notStored' in d || tooLarge) {
      st.result = 'uncacheable';
      st.status = 'fwd=' + (st.stale === undefined ? 'miss' : 'stale') + '; detail=' + ('notStored' in d ? d.notStored : 'too-large');
      // Requests for this key stop waiting on each other for a while (hit-for-miss).
      cache.fills.markUncacheable(st.key, this.now() + cache.spec.hitForMiss);
      this.endFill(st);
      if (stale !== undefined && res.status < 500) cache.store.remove(stale);
      return 'Cache-Status: portico; ' + st.status + '\r\n';
    }
    st.policy = d.policy;
    st.storing = true;
    if (st.fill === undefined) st.fill = cache.fills.get(st.key) === undefined ? cache.fills.begin(st.key, cache.spec.maxObjectSize) : undefined;
    const f = st.fill;
    if (f !== undefined) {
      f.variant = variantKey(parseVary(fields['vary']), st.req.headers);
      f.setHead({ status: res.status, headers: fields });
    }
    st.status += '; stored';
    return 'Cache-Status: portico; ' + st.status + '\r\n';
  }

  onResponseBody(ex: Exchange, data: Buffer, end: boolean): Buffer {
    const st = ex.cacheState as CacheState | undefined;
    if (st === undefined || !st.storing) return data;
    const f = st.fill;
    if (data.length > 0) {
      if (f !== undefined) f.push(data.buffer.byteLength > data.length * 2 ? Buffer.from(data) : data);
    }
    if (end) this.complete(st);
    return data;
  }

  onFailure(ex: Exchange, _o: Outcome): Answer | undefined {
    const st = ex.cacheState as CacheState | undefined;
    if (st === undefined) return undefined;
    this.endFill(st);
    const stale = st.stale;
    if (stale === undefined || !stale.policy.staleIfError()) return undefined;
    return this.answerFrom(ex, st, stale, 'stale', 'fwd=stale; detail=stale-if-error');
  }

  onDone(ex: Exchange): void {
    const st = ex.cacheState as CacheState | undefined;
    if (st === undefined) return;
    if (st.storing && st.fill !== undefined && !st.fill.ended && ex.outcome === undefined && ex.response !== undefined && ex.response.contentLength === 0) {
      this.complete(st); // a response without a body: nothing came through onResponseBody
    }
    this.endFill(st);
    if (ex.cacheStatus === '' && st.status !== '') {
      ex.cacheStatus = st.status;
      st.cache.count(st.result);
    }
    if (st.result === 'bypass' && ex.method !== 'GET' && ex.method !== 'HEAD' && ex.outcome === undefined && ex.response !== undefined) {
      for (const t of invalidatedTargets(ex.method, ex.status, st.req.url, responseFields(ex.response), ex.host)) st.cache.invalidate(ex.host, t);
    }
  }

  /** The body arrived whole: store it (when it stayed within the limit) and release the joined requests. */
  private complete(st: CacheState): void {
    const f = st.fill;
    const policy = st.policy;
    st.storing = false;
    if (f === undefined || policy === undefined) return;
    if (f.keeping && !f.aborted) {
      // Stored as one buffer: a hit is then one write of head and body.
      const body = f.chunks.length === 1 ? f.chunks.slice() : [Buffer.concat(f.chunks, f.length)];
      const stored = st.cache.insert(st.key, st.req.headers, policy, body, f.length);
      if (stored !== undefined && st.stale !== undefined && st.stale !== stored) st.cache.store.remove(st.stale);
    }
    f.end();
    st.cache.fills.finish(f);
    st.fill = undefined;
  }

  /** The fetch of this request will store nothing: the joined requests go to the server themselves. */
  private endFill(st: CacheState): void {
    const f = st.fill;
    st.storing = false;
    if (f === undefined) return;
    st.fill = undefined;
    if (!f.ended) f.abort();
    st.cache.fills.finish(f);
  }

  /** Stored header fields as the client gets them: hop-by-hop and framing fields out (and `skip`), the route's edits applied. */
  private replayHeaders(ex: Exchange, fields: Fields, skip = ''): string {
    const route = ex.compiledRoute!;
    const drop = route.answerDrop ?? route.responseDrop;
    let h = '';
    for (const k in fields) {
      if (NOT_REPLAYED.has(k) || drop.has(k) || k === skip) continue;
      h += k + ': ' + fields[k] + '\r\n';
    }
    return h + route.responseAdd;
  }

  /**
   * A fresh hit of a stored 200, whole, to a GET without conditional or range fields (the common
   * case). Its head is the one kept on the object (HitHead) while the policy, the route, `Age` and
   * the second of `Date` are the same, so hits within a second do not build it again; and it may
   * go out as one buffer (StoredAnswer.wire). Undefined for any other request (answerFrom).
   */
  private plainHit(ex: Exchange, st: CacheState, o: CacheObject): Answer | undefined {
    const r = st.req.headers;
    if (ex.method !== 'GET' || r['range'] !== undefined || r['if-none-match'] !== undefined || r['if-modified-since'] !== undefined) return undefined;
    const policy = o.policy;
    if (policy.status() !== 200) return undefined;
    const route = ex.compiledRoute!;
    const age = policy.age();
    const second = Math.floor(policyNow() / 1000);
    let hh = o.hitHead;
    if (hh === undefined || hh.policy !== policy || hh.route !== route || hh.age !== age || hh.second !== second) {
      const fields = policy.responseHeaders();
      const status = 'hit; ttl=' + Math.round(policy.lifetime() - age);
      let text = statusLine(200) + this.replayHeaders(ex, fields, 'accept-ranges') + 'accept-ranges: bytes\r\n';
      text += 'content-length: ' + o.bodyLength + '\r\nAge: ' + age + '\r\nCache-Status: portico; ' + status + '\r\n';
      hh = { policy, route, age, second, text, status };
      o.hitHead = hh;
    }
    this.endFill(st);
    st.result = 'hit';
    st.status = hh.status;
    ex.cacheStatus = hh.status;
    st.cache.count('hit');
    if (o.bodyLength === 0) return new StoredAnswer(200, hh.text, false, undefined);
    return new StoredAnswer(200, hh.text, true, new StoredBody(o.body, 0, o.bodyLength), { store: st.cache.store, o }, true);
  }

  /** Answer from a stored object: 200 (or its status), 304 to a satisfied conditional, 206/416 to one range, HEAD without a body. */
  private answerFrom(ex: Exchange, st: CacheState, o: CacheObject, result: CacheResult, status: string): Answer {
    this.endFill(st);
    st.result = result;
    st.status = status;
    ex.cacheStatus = status;
    st.cache.count(result);
    const policy = o.policy;
    const fields = policy.responseHeaders();
    const age = fields['age'] ?? '0';
    const tail = 'Age: ' + age + '\r\nCache-Status: portico; ' + status + '\r\n';
    const head = ex.method === 'HEAD';
    let code = policy.status();
    if (code === 200 && notModified(st.req.headers, fields)) {
      let h = 'HTTP/1.1 304 Not Modified\r\n';
      for (const k of ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified']) {
        if (fields[k] !== undefined) h += k + ': ' + fields[k] + '\r\n';
      }
      return new StoredAnswer(304, h + tail, false, undefined);
    }
    let start = 0;
    let length = o.bodyLength;
    let extra = '';
    if (code === 200) {
      const r = byteRange(st.req.headers['range'], o.bodyLength);
      if (r === 'unsatisfiable') {
        const h = 'HTTP/1.1 416 Range Not Satisfiable\r\ncontent-range: bytes */' + o.bodyLength + '\r\ncontent-length: 0\r\n';
        return new StoredAnswer(416, h + tail, false, undefined);
      }
      if (typeof r === 'object') {
        code = 206;
        start = r.start;
        length = r.end - r.start + 1;
        extra = 'content-range: bytes ' + r.start + '-' + r.end + '/' + o.bodyLength + '\r\n';
      } else extra = 'accept-ranges: bytes\r\n';
    }
    // The cache answers ranges of a stored 200 itself: its Accept-Ranges stands for the server's.
    let h = statusLine(code) + this.replayHeaders(ex, fields, code === 200 ? 'accept-ranges' : '') + extra;
    if (code !== 204 && code !== 304) h += 'content-length: ' + length + '\r\n';
    const hasBody = !head && length > 0 && code !== 204;
    const whole = hasBody && code !== 206 ? { store: st.cache.store, o } : undefined;
    return new StoredAnswer(code, h + tail, hasBody, hasBody ? new StoredBody(o.body, start, length) : undefined, whole);
  }

  /**
   * stale-while-revalidate: one background request for the key through the route's pool, as a
   * miss goes (BackgroundFetch: the pool's balancing, queue, retries, pooled connections and TLS,
   * timeouts and passive health), with the stored validators; its answer (a 304, or a storable
   * response within the limit) replaces the stored response. A failure leaves the stale object as
   * it is. It carries the forwarding fields a forwarded request of the client would (the route's
   * request-head phases, the listener's client-certificate fields). Not on a listener that sends
   * the PROXY protocol (the refresh's server connection is not the client's).
   */
  private refresh(ex: Exchange, st: CacheState, o: CacheObject): void {
    const cache = st.cache;
    const ph = ex.poolHandle;
    if (ph === undefined || ex.sendsProxy || cache.refreshing.has(st.key)) return;
    const route = ex.compiledRoute!;
    const drop = route.requestDrop;
    let h = 'GET ' + st.req.url + ' HTTP/1.1\r\n';
    const names = ex.head!.names;
    const lnames = ex.lnames;
    const values = ex.values;
    for (let i = 0; i < lnames.length; i++) {
      const ln = lnames[i]!;
      if (drop.has(ln) || NOT_REFRESHED.has(ln)) continue;
      h += names[i]! + ': ' + values[i]! + '\r\n';
    }
    const v = o.policy.validators();
    if (v['if-none-match'] !== undefined) h += 'If-None-Match: ' + v['if-none-match'] + '\r\n';
    if (v['if-modified-since'] !== undefined) h += 'If-Modified-Since: ' + v['if-modified-since'] + '\r\n';
    h += route.requestAdd;
    // What the route's other phases write on a forwarded request (X-Forwarded-*, Forwarded,
    // persistence's cookies), and the listener's client-certificate fields, as the client's own
    // request would carry them: the server sees the refresh as that client's request.
    const phases = route.phases.upstreamHead;
    for (let i = 0; i < phases.length; i++) if (phases[i] !== this) h += phases[i]!.upstreamHead!(ex);
    h += ex.clientCertHead + '\r\n';
    cache.refreshing.add(st.key);
    new BackgroundFetch(ph, h, ex.upstreamHeadLimits, new Refresh(cache, st.key, st.req, o)).start(ex.path);
  }
}

/**
 * Request fields a background refresh does not take from the client's request as received: its
 * own conditional fields and ranges (the refresh sends the stored validators, for the whole
 * object), the body's, and the forwarding and client-certificate fields (written by the route's
 * phases and the listener, as on a forwarded request).
 */
const NOT_REFRESHED: ReadonlySet<string> = new Set([
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'if-range',
  'range',
  'content-length',
  'transfer-encoding',
  'expect',
  ...FORWARDING,
  ...CLIENT_CERT,
]);

/** Where a background refresh's answer goes: a 304 refreshes the stored head, a storable 200 replaces the object. */
class Refresh implements BackgroundSink {
  private policy: StoredPolicy | undefined;
  private readonly chunks: Buffer[] = [];
  private length = 0;

  constructor(
    private readonly cache: Cache,
    private readonly key: string,
    private readonly req: CacheRequest,
    private readonly o: CacheObject,
  ) {}

  head(res: ResponseHead): boolean {
    const fields = responseFields(res);
    if (res.status === 304) {
      const next = this.o.policy.revalidated(this.req, { status: 304, headers: fields });
      if (!next.modified) this.cache.refresh(this.o, next.policy);
      this.done();
      return false;
    }
    const d = storeDecision(this.req, { status: res.status, headers: fields });
    if (!('policy' in d) || res.contentLength > this.cache.spec.maxObjectSize) {
      this.done();
      return false;
    }
    this.policy = d.policy;
    return true;
  }

  data(chunk: Buffer): void {
    this.length += chunk.length;
    if (this.length <= this.cache.spec.maxObjectSize) this.chunks.push(chunk.buffer.byteLength > chunk.length * 2 ? Buffer.from(chunk) : chunk);
  }

  end(): void {
    this.done();
    const chunks = this.chunks.length <= 1 ? this.chunks : [Buffer.concat(this.chunks, this.length)];
    if (this.policy !== undefined && this.length <= this.cache.spec.maxObjectSize) this.cache.insert(this.key, this.req.headers, this.policy, chunks, this.length);
  }

  failed(): void {
    this.done();
  }

  private done(): void {
    this.cache.refreshing.delete(this.key);
  }
}
