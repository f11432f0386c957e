import { AliasTable } from '../balancer/weights.js';
import { SeededRng, type Rng } from '../core/rng.js';
import { formatBytes, sum, TraceBuilder, type Trace } from './trace.js';

/** A synthetic workload: Zipf popularity over FILES files, REQUESTS independent requests. */
export interface ZipfSpec {
  readonly alpha: number;
  readonly files: number;
  readonly requests: number;
}

export const DEFAULT_ZIPF_FILES = 40_000;
export const DEFAULT_ZIPF_REQUESTS = 1_000_000;

/** File sizes of a synthetic workload. */
export type SizeDistribution =
  | { readonly kind: 'fixed'; readonly bytes: number }
  | { readonly kind: 'lognormal'; readonly median: number; readonly sigma: number };

/** Median 6000 bytes, sigma 1.2: mean about 12 KB, a 1990s web server's static files. */
export const DEFAULT_SIZES: SizeDistribution = { kind: 'lognormal', median: 6000, sigma: 1.2 };

const num = (s: string | undefined): number => (s === undefined || s.trim() === '' ? NaN : Number(s));

/** `zipf:ALPHA[:FILES[:REQUESTS]]`, e.g. `zipf:0.8:40000:1000000`. */
export function parseZipfSpec(text: string): ZipfSpec {
  const parts = text.split(':');
  if (parts[0] !== 'zipf' || parts.length < 2 || parts.length > 4) {
    throw new Error(`--synthetic must be zipf:ALPHA[:FILES[:REQUESTS]] (got ${JSON.stringify(text)})`);
  }
  const alpha = num(parts[1]);
  const files = parts[2] === undefined ? DEFAULT_ZIPF_FILES : num(parts[2]);
  const requests = parts[3] === undefined ? DEFAULT_ZIPF_REQUESTS : num(parts[3]);
  if (!(alpha >= 0 && alpha <= 10)) throw new Error(`zipf ALPHA must be between 0 and 10 (got ${parts[1]})`);
  if (!(Number.isInteger(files) && files >= 1 && files <= 50_000_000)) throw new Error(`zipf FILES must be an integer from 1 to 50000000 (got ${parts[2]})`);
  if (!(Number.isInteger(requests) && requests >= 1 && requests <= 200_000_000)) {
    throw new Error(`zipf REQUESTS must be an integer from 1 to 200000000 (got ${parts[3]})`);
  }
  return { alpha, files, requests };
}

/** `fixed:BYTES` or `lognormal:MEDIAN:SIGMA`. */
export function parseSizes(text: string): SizeDistribution {
  const parts = text.split(':');
  if (parts[0] === 'fixed' && parts.length === 2) {
    const bytes = num(parts[1]);
    if (Number.isInteger(bytes) && bytes >= 0) return { kind: 'fixed', bytes };
  } else if (parts[0] === 'lognormal' && parts.length === 3) {
    const median = num(parts[1]);
    const sigma = num(parts[2]);
    if (median >= 1 && sigma >= 0 && sigma <= 5) return { kind: 'lognormal', median, sigma };
  }
  throw new Error(`--sizes must be fixed:BYTES or lognormal:MEDIAN:SIGMA (got ${JSON.stringify(text)})`);
}

/** A standard normal draw (Box–Muller). */
function gaussian(rng: Rng): number {
  const u = 1 - rng.next(); // (0, 1]
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function drawSize(d: SizeDistribution, rng: Rng): number {
  if (d.kind === 'fixed') return d.bytes;
  return Math.max(1, Math.round(d.median * Math.exp(d.sigma * gaussian(rng))));
}

/**
 * Requests drawn independently with P(rank r) ∝ 1 / r^alpha (the independent reference model with
 * Zipf popularity), file sizes drawn independently of popularity. File of rank r is `/zipf/r`.
 * Deterministic for a seed.
 */
export function zipfTrace(spec: ZipfSpec, sizes: SizeDistribution, seed: number): Trace {
  const rng = new SeededRng(seed);
  const b = new TraceBuilder();
  const fileSize = new Float64Array(spec.files);
  const weights = new Float64Array(spec.files);
  for (let r = 0; r < spec.files; r++) {
    fileSize[r] = drawSize(sizes, rng);
    weights[r] = 1 / Math.pow(r + 1, spec.alpha);
  }
  // ids in rank order, so file id r is rank r + 1
  for (let r = 0; r < spec.files; r++) b.file(`/zipf/${r + 1}`, fileSize[r]!);
  const alias = new AliasTable(weights);
  for (let i = 0; i < spec.requests; i++) {
    const r = alias.sample(rng.next());
    b.request(r, fileSize[r]!);
  }
  const sizeText = sizes.kind === 'fixed' ? `${sizes.bytes} B each` : `lognormal median ${sizes.median} B sigma ${sizes.sigma}`;
  return b.build(
    `zipf alpha ${spec.alpha}: ${spec.requests} requests for ${spec.files} files (${formatBytes(sum(fileSize))}, ${sizeText}), seed ${seed}`,
  );
}
