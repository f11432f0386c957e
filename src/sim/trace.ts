/**
 * A request trace for the simulator: which file each request asks for and how many bytes it sends
 * back. Files get dense ids in order of first appearance, so caches and tables are typed arrays.
 */
export interface Trace {
  /** Path of each file id. */
  readonly paths: readonly string[];
  /** Size of each file in bytes: the largest response seen for it (what a cache miss reads from disk). */
  readonly fileSizes: Float64Array;
  /** File id of each request, in trace order. */
  readonly files: Uint32Array;
  /** Bytes sent by each request; 0 (a 304, a HEAD) costs connection set-up only and touches no cache. */
  readonly bytes: Float64Array;
  /** Lines that were not requests (unparseable, or an error status). */
  readonly skipped: number;
  /** One line saying what the trace is. */
  readonly description: string;
}

/** Builds a Trace request by request. */
export class TraceBuilder {
  private readonly ids = new Map<string, number>();
  private readonly paths: string[] = [];
  private sizes = new Float64Array(1024);
  private files = new Uint32Array(1024);
  private bytes = new Float64Array(1024);
  private n = 0;
  skipped = 0;

  get requests(): number {
    return this.n;
  }

  /** The id of `path`, created on first sight, with its size raised to at least `size`. */
  file(path: string, size: number): number {
    let id = this.ids.get(path);
    if (id === undefined) {
      id = this.paths.length;
      this.ids.set(path, id);
      this.paths.push(path);
      if (id === this.sizes.length) this.sizes = grow(this.sizes);
    }
    if (size > this.sizes[id]!) this.sizes[id] = size;
    return id;
  }

  /** One request for `path` that sent `bytes`. */
  add(path: string, bytes: number): void {
    this.request(this.file(path, bytes), bytes);
  }

  /** One request for an existing file id. */
  request(id: number, bytes: number): void {
    if (this.n === this.files.length) {
      this.files = grow(this.files);
      this.bytes = grow(this.bytes);
    }
    this.files[this.n] = id;
    this.bytes[this.n] = bytes;
    this.n++;
  }

  build(description: string): Trace {
    return {
      paths: this.paths,
      fileSizes: this.sizes.slice(0, this.paths.length),
      files: this.files.slice(0, this.n),
      bytes: this.bytes.slice(0, this.n),
      skipped: this.skipped,
      description,
    };
  }
}

function grow<T extends Float64Array | Uint32Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}

// host ident authuser [date] "request" status bytes (Combined Log Format adds fields after these)
const CLF = /^\S+ \S+ \S+ \[[^\]]*\] "([^"]*)" (\d{3}|-) (\d+|-)(?:\s|$)/;
const PATH_SIZE = /^(\S+)\s+(\d+)\s*$/;

export type TraceLine = { readonly path: string; readonly bytes: number } | 'skip' | 'blank';

/**
 * One line of a trace, in either format:
 * - Common Log Format (or Combined): the request line's target, without scheme, host, query or
 *   fragment, and the bytes field (`-` is 0). Requests answered 4xx/5xx are skipped: a static-file
 *   server's cost model does not apply to them.
 * - `path size`: a path and its size in bytes.
 * Blank lines and lines starting with `#` are 'blank'; anything else is 'skip'.
 */
export function parseTraceLine(line: string): TraceLine {
  const s = line.trim();
  if (s === '' || s.startsWith('#')) return 'blank';
  const m = CLF.exec(s);
  if (m !== null) {
    const status = m[2]!;
    if (status !== '-' && (status < '200' || status >= '400')) return 'skip';
    const parts = m[1]!.split(' ');
    if (parts.length < 2 || parts.length > 3 || !/^[A-Z]+$/.test(parts[0]!)) return 'skip';
    const path = targetPath(parts[1]!);
    if (path === undefined) return 'skip';
    return { path, bytes: m[3] === '-' ? 0 : Number(m[3]) };
  }
  const p = PATH_SIZE.exec(s);
  if (p !== null) {
    const bytes = Number(p[2]);
    if (!Number.isSafeInteger(bytes)) return 'skip';
    return { path: p[1]!, bytes };
  }
  return 'skip';
}

/** The path of a request target: origin-form as is, absolute-form without scheme and host; no query. */
function targetPath(target: string): string | undefined {
  let t = target;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(t);
  if (abs !== null) t = t.slice(abs[0].length) || '/';
  const cut = t.search(/[?#]/);
  if (cut >= 0) t = t.slice(0, cut);
  if (!t.startsWith('/')) return undefined; // '*' (OPTIONS) or garbage
  return t;
}

/** Parse a whole trace (either format, line by line). */
export function parseTrace(text: string, name = 'trace'): Trace {
  const b = new TraceBuilder();
  let start = 0;
  const len = text.length;
  while (start < len) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = len;
    const r = parseTraceLine(text.slice(start, end));
    if (r === 'skip') b.skipped++;
    else if (r !== 'blank') b.add(r.path, r.bytes);
    start = end + 1;
  }
  const t = b.build('');
  return { ...t, description: `${name}: ${t.files.length} requests for ${t.paths.length} files (${formatBytes(sum(t.fileSizes))})${t.skipped > 0 ? `, ${t.skipped} lines skipped` : ''}` };
}

export function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
}

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}
