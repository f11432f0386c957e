/**
 * Decodes a chunked body (RFC 9112 §7.1) into its data, for HTTP/2 clients, which have no
 * chunked coding. Its input has already passed the strict ChunkedScanner of the HTTP/1.1 data
 * path (the session checks every byte before it relays it), so this decoder only has to be
 * correct on valid input; extensions are skipped, and trailer fields are kept for trailers().
 */
const SIZE = 0;
const EXT = 1;
const DATA = 2;
const DATA_CR = 3;
const DATA_LF = 4;
const LINE_START = 5; // after the last chunk: a trailer field or the final CRLF
const TRAILER = 6;
const END_LF = 7;
const DONE = 8;

export class ChunkedDecoder {
  private state = SIZE;
  private size = 0;
  private remaining = 0;
  private digits = 0;
  /** The trailer section's lines, LF-separated ('' when there are none: most messages). */
  private trailerText = '';

  get done(): boolean {
    return this.state === DONE;
  }

  /**
   * Feed bytes; each run of data is passed to `out` (a view into `buf`). Returns the offset just
   * past the end of the message when it ends inside `buf`, or -1 when more is needed.
   */
  feed(buf: Buffer, out: (data: Buffer) => void): number {
    let i = 0;
    const n = buf.length;
    let state = this.state;
    while (i < n && state !== DONE) {
      if (state === DATA) {
        const take = Math.min(n - i, this.remaining);
        out(buf.subarray(i, i + take));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) state = DATA_CR;
        continue;
      }
      const c = buf[i++]!;
      switch (state) {
        case SIZE: {
          const v = hex(c);
          if (v >= 0) {
            this.size = this.size * 16 + v;
            this.digits++;
          } else if (c === 0x0a) {
            state = this.endOfSizeLine();
          } else if (c !== 0x0d) {
            state = EXT; // ';' extensions, or whitespace before them
          }
          break;
        }
        case EXT:
          if (c === 0x0a) state = this.endOfSizeLine();
          break;
        case DATA_CR:
          state = c === 0x0d ? DATA_LF : c === 0x0a ? SIZE : DATA_LF;
          break;
        case DATA_LF:
          state = SIZE;
          break;
        case LINE_START:
          if (c === 0x0d) state = END_LF;
          else if (c === 0x0a) state = DONE;
          else {
            state = TRAILER;
            i--; // the line starts with this byte
          }
          break;
        case TRAILER: {
          // The rest of a trailer line, at once.
          const from = i - 1;
          const lf = buf.indexOf(0x0a, from);
          const stop = lf < 0 ? n : lf;
          this.trailerText += buf.toString('latin1', from, stop);
          if (lf < 0) {
            i = n;
          } else {
            this.trailerText += '\n';
            i = lf + 1;
            state = LINE_START;
          }
          break;
        }
        case END_LF:
          state = DONE;
          break;
      }
    }
    this.state = state;
    return state === DONE ? i : -1;
  }

  /** The trailer fields as [lower-case name, value] pairs, once the message has ended. */
  trailers(): [string, string][] {
    const out: [string, string][] = [];
    if (this.trailerText === '') return out;
    for (const raw of this.trailerText.split('\n')) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      out.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')]);
    }
    return out;
  }

  private endOfSizeLine(): number {
    const size = this.size;
    this.size = 0;
    this.digits = 0;
    if (size === 0) return LINE_START;
    this.remaining = size;
    return DATA;
  }
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
