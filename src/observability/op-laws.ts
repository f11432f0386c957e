/**
 * The operational laws of a pool, from what Portico measures (Denning and Buzen; Lazowska et
 * al., ch. 3 and 5; shared ALGORITHMS.md section 7). Pure: no clock, no I/O. Times in ms,
 * throughputs in requests/s.
 *
 * Each server k of a pool is a station with c_k parallel slots (its parallelism: worker
 * threads, connections it serves at once) and a service time S_k per request. Each request
 * of the pool visits one server, server k with the share V_k of the requests. Then:
 *
 *   utilization law   U_k = X_k · S_k            (busy slots; U_k / c_k is the busy fraction)
 *   service demand    D_k = V_k · S_k / c_k      (per slot, per request of the pool)
 *   Little's law      N = X · R                  (checked: N is measured on its own)
 *   bounds (closed, N requests in flight, think time Z, D = Σ V_k S_k, Dmax = max D_k):
 *                     X(N) <= min(1/Dmax, N/(D + Z))      R(N) >= max(D, N·Dmax − Z)
 *   saturation        X <= 1/Dmax; the server with the largest D_k is the bottleneck.
 *
 * How S_k and c_k are estimated from the server's own timing (estimateService):
 * - The server's time of a request is its time to first byte less its connect time (Portico
 *   measures both): from the request written on a ready connection to the first byte of the
 *   answer. It leaves out Portico's queue and the connection set-up, and keeps the server's
 *   work plus one network round trip (tens of µs on a LAN).
 * - S_k is the low-load value of that time: the lowest mean of it over an interval (1 s) of the
 *   long window (60 s) with enough requests. Under load the mean grows by the time requests
 *   wait inside the server for a slot; at low load it is the service time.
 * - c_k: with `maxConnections` Portico never has more than that many requests on the server,
 *   so it bounds the slots the pool can use; without it, c_k is measured. By Little's law
 *   applied to the server alone, X_k·T_k requests are at the server (T_k its mean time over an
 *   interval); when T_k stays near S_k (within 25 %) nothing waited, so c_k >= X_k·T_k; when
 *   T_k is well above S_k while at least one slot was busy (X_k·S_k >= 0.9), requests waited
 *   for a slot, every slot was busy, and c_k = X_k·S_k (the utilization law at saturation: the median over
 *   the saturated intervals). A server has one slot at least. c_k is the largest of these over the long window; a
 *   server never seen saturated has only a lower bound (`cSource: 'observed'`); when that server
 *   is the bottleneck, the pool's saturation bound is a lower bound too (`exact: false`).
 */

/** One interval of one server, as the traffic counters give it. */
export interface ServiceSample {
  readonly dtMs: number;
  /** Requests that had a server time (an answer from the server). */
  readonly svcN: number;
  /** Sum of their server times: time to first byte less connect time (ms). */
  readonly svcSumMs: number;
}

export type ParallelismSource = 'maxConnections' | 'saturation' | 'observed';

export interface ServiceEstimate {
  /** Low-load service time (ms), null before an interval with enough requests. */
  readonly S: number | null;
  /** Mean server time over the recent window (ms). */
  readonly T: number | null;
  /** Parallelism (slots), null with no estimate. */
  readonly c: number | null;
  /** Where c comes from; 'observed' is a lower bound (the server was never seen saturated). */
  readonly cSource: ParallelismSource | null;
}

export interface EstimateOptions {
  /** Intervals (from the end of `samples`) that T is the mean over (default 10). */
  readonly recent?: number;
  /** Least requests in an interval for it to count (default 5). */
  readonly minRequests?: number;
  /** T above S by more than this share means requests waited inside the server (default 0.25). */
  readonly queueingShare?: number;
  /** ...provided at least this many slots were busy, X·S (default 0.9: a server has one slot at least). */
  readonly saturatedBusy?: number;
}

/** S, T and c of one server from its intervals, oldest first (see the module's comment). */
export function estimateService(samples: readonly ServiceSample[], maxConnections: number, opts: EstimateOptions = {}): ServiceEstimate {
  const minRequests = opts.minRequests ?? 5;
  const share = opts.queueingShare ?? 0.25;
  const recent = opts.recent ?? 10;
  const minBusy = opts.saturatedBusy ?? 0.9;
  let S = Infinity;
  for (const s of samples) if (s.svcN >= minRequests && s.svcN > 0) S = Math.min(S, s.svcSumMs / s.svcN);
  let tSum = 0;
  let tN = 0;
  for (let i = Math.max(0, samples.length - recent); i < samples.length; i++) {
    tSum += samples[i]!.svcSumMs;
    tN += samples[i]!.svcN;
  }
  const T = tN > 0 ? tSum / tN : null;
  if (S === Infinity) return { S: null, T, c: maxConnections > 0 ? maxConnections : null, cSource: maxConnections > 0 ? 'maxConnections' : null };
  const sat: number[] = [];
  let cObs = 0;
  for (const s of samples) {
    if (s.svcN < minRequests || s.dtMs <= 0) continue;
    const x = (s.svcN * 1000) / s.dtMs;
    const t = s.svcSumMs / s.svcN;
    const busy = (x * S) / 1000;
    // Saturated: the time grew past S (requests waited for a slot) with at least one slot busy
    // nine tenths of the time. A time that grew while less than a slot was busy is not waiting
    // for a slot (a slower network, a busy Portico): that interval only shows requests at once.
    if (t > S * (1 + share) && busy >= minBusy) sat.push(busy);
    else cObs = Math.max(cObs, (x * t) / 1000);
  }
  // The median of the saturated intervals: one noisy second, or one that the load entered or
  // left half-way, does not move it.
  const cSat = median(sat);
  let c: number;
  let cSource: ParallelismSource;
  if (cSat > 0) {
    // A second when the server was slow for another reason (the machine busy) also looks like
    // waiting, with fewer requests served: the most requests seen at once in its normal time win.
    c = Math.max(1, cSat, cObs);
    cSource = 'saturation';
    if (maxConnections > 0 && maxConnections < c) {
      c = maxConnections;
      cSource = 'maxConnections';
    }
  } else if (maxConnections > 0) {
    c = maxConnections;
    cSource = 'maxConnections';
  } else {
    c = Math.max(1, cObs);
    cSource = 'observed';
  }
  return { S, T, c, cSource };
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  xs.sort((a, b) => a - b);
  const m = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[m]! : (xs[m - 1]! + xs[m]!) / 2;
}

/** What the analysis of a pool needs of each server. */
export interface ServerLawInput {
  readonly name: string;
  /** Throughput over the window (req/s). */
  readonly X: number;
  readonly weight: number;
  /** Takes new requests (available, not a backup in reserve). */
  readonly inService: boolean;
  readonly S: number | null;
  readonly c: number | null;
  readonly cSource: ParallelismSource | null;
}

export interface PoolLawInput {
  /** Throughput (req/s), mean response time (ms), mean in flight (measured), over the window. */
  readonly X: number;
  readonly R: number | null;
  readonly N: number;
  readonly servers: readonly ServerLawInput[];
}

export interface ServerLaws {
  readonly name: string;
  /** Share of the pool's requests (measured; by weight when the pool had none). */
  readonly V: number;
  readonly S: number | null;
  readonly c: number | null;
  readonly cSource: ParallelismSource | null;
  /** Busy slots, X·S (utilization law). */
  readonly U: number | null;
  /** Busy fraction, X·S / c. */
  readonly utilization: number | null;
  /** Service demand per request of the pool, per slot: V·S/c (ms). */
  readonly D: number | null;
  /** What the server alone can take: c/S (req/s). */
  readonly capacity: number | null;
}

export interface PoolLaws {
  readonly X: number;
  readonly R: number | null;
  readonly N: number;
  /** X·R: Little's law says it equals N. */
  readonly XR: number | null;
  /** Think time the bounds use (ms; 0 for an open system such as a load balancer's clients). */
  readonly Z: number;
  /** Σ V_k S_k: the least time a request can take (ms). */
  readonly D: number | null;
  readonly Dmax: number | null;
  /** The server with the largest demand. */
  readonly bottleneck: string | null;
  /** 1/Dmax: the throughput the pool saturates near (req/s). */
  readonly saturation: number | null;
  /** The bound holds as an estimate (every server's parallelism known), not only as a lower bound. */
  readonly exact: boolean;
  /** N* = (D + Z)/Dmax: the load beyond which the pool is saturated. */
  readonly knee: number | null;
  /** The bounds at the measured N: X(N) <= Xmax, R(N) >= Rmin. */
  readonly bounds: { readonly N: number; readonly Xmax: number | null; readonly Rmin: number | null };
  /** Servers taking requests whose service time is not known yet. */
  readonly unknown: readonly string[];
  readonly servers: readonly ServerLaws[];
  /** In words: "this pool saturates near 4,200 req/s; web2 is the bottleneck". */
  readonly summary: string;
}

/** The laws of a pool from its measured figures and its servers' estimates. */
export function poolLaws(p: PoolLawInput, Z = 0): PoolLaws {
  const inService = p.servers.filter((s) => s.inService);
  let xSum = 0;
  for (const s of p.servers) xSum += s.X;
  let wSum = 0;
  for (const s of inService) wSum += s.weight;
  const servers: ServerLaws[] = [];
  let D = 0;
  let Dmax = 0;
  let bottleneck: string | null = null;
  let exact = false;
  const unknown: string[] = [];
  for (const s of p.servers) {
    const V = xSum > 0 ? s.X / xSum : s.inService && wSum > 0 ? s.weight / wSum : 0;
    const known = s.S !== null && s.c !== null && s.c > 0;
    const U = s.S !== null ? (s.X * s.S) / 1000 : null;
    const d = known ? (V * s.S!) / s.c! : null;
    servers.push({
      name: s.name,
      V: round(V, 4),
      S: s.S === null ? null : round(s.S, 3),
      c: s.c === null ? null : round(s.c, 2),
      cSource: s.cSource,
      U: U === null ? null : round(U, 3),
      utilization: U !== null && s.c !== null && s.c > 0 ? round(U / s.c, 4) : null,
      D: d === null ? null : round(d, 4),
      capacity: known ? round((s.c! * 1000) / s.S!, 1) : null,
    });
    if (V <= 0) continue;
    if (!known) {
      unknown.push(s.name);
      continue;
    }
    D += V * s.S!;
    if (d! > Dmax) {
      Dmax = d!;
      bottleneck = s.name;
      // Another server's parallelism that is only a lower bound overstates its demand, never
      // understates it: the bound is exact when the bottleneck's own parallelism is known.
      exact = s.cSource !== 'observed';
    }
  }
  const XR = p.R === null ? null : (p.X * p.R) / 1000;
  const have = Dmax > 0 && unknown.length === 0;
  const saturation = have ? 1000 / Dmax : null;
  const Xmax = have ? Math.min(1000 / Dmax, (p.N * 1000) / (D + Z)) : null;
  const Rmin = have ? Math.max(D, p.N * Dmax - Z) : null;
  const laws: Omit<PoolLaws, 'summary'> = {
    X: round(p.X, 3),
    R: p.R === null ? null : round(p.R, 3),
    N: round(p.N, 4),
    XR: XR === null ? null : round(XR, 4),
    Z,
    D: have ? round(D, 3) : null,
    Dmax: have ? round(Dmax, 4) : null,
    bottleneck: have ? bottleneck : null,
    saturation: saturation === null ? null : round(saturation, 1),
    exact: have && exact,
    knee: have ? round((D + Z) / Dmax, 2) : null,
    bounds: { N: round(p.N, 4), Xmax: Xmax === null ? null : round(Xmax, 1), Rmin: Rmin === null ? null : round(Rmin, 3) },
    unknown,
    servers,
  };
  return { ...laws, summary: summarize(laws) };
}

function summarize(l: Omit<PoolLaws, 'summary'>): string {
  if (l.saturation === null) {
    if (l.unknown.length > 0) return `no saturation bound yet: no service time measured for ${l.unknown.join(', ')}`;
    return 'no saturation bound yet: no server takes requests';
  }
  const rate = Math.round(l.saturation).toLocaleString('en-US');
  if (l.exact) return `this pool saturates near ${rate} req/s; ${l.bottleneck} is the bottleneck`;
  return `this pool saturates at ${rate} req/s or more; ${l.bottleneck} is the bottleneck (its parallelism is only a lower bound: it was never seen saturated)`;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
