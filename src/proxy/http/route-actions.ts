import { STATUS_CODES } from 'node:http';
import { HOP_BY_HOP } from './headers.js';

/** Header edits of a route, one direction, as configured. */
export interface HeaderEditsSpec {
  readonly set: Readonly<Record<string, string>>;
  readonly add: Readonly<Record<string, string>>;
  readonly remove: readonly string[];
}

/** Header edits compiled for the data path: which names are not relayed as received, and what is added. */
export interface CompiledEdits {
  /** Lower-case names not relayed as received: hop-by-hop, removed, replaced. `HOP_BY_HOP` itself when nothing is edited. */
  readonly drop: ReadonlySet<string>;
  /** Header lines appended (each ending in CRLF), '' for none. */
  readonly add: string;
}

const NO_EDITS: CompiledEdits = { drop: HOP_BY_HOP, add: '' };

/**
 * Compile one direction of a route's header edits, plus the headers that persistence rewrites
 * (`rewritten`): `remove` and the names of `set` are dropped, `set` and `add` are appended. A route
 * with nothing to edit gets `HOP_BY_HOP` and '' (the data path then does exactly what it does
 * without routes).
 */
export function compileEdits(spec: HeaderEditsSpec | undefined, rewritten: readonly string[] = []): CompiledEdits {
  const set = spec === undefined ? [] : Object.entries(spec.set);
  const add = spec === undefined ? [] : Object.entries(spec.add);
  const remove = spec === undefined ? [] : spec.remove;
  if (set.length === 0 && add.length === 0 && remove.length === 0 && rewritten.length === 0) return NO_EDITS;
  const drop = new Set(HOP_BY_HOP);
  for (const n of remove) drop.add(n.toLowerCase());
  for (const [n] of set) drop.add(n.toLowerCase());
  for (const n of rewritten) drop.add(n);
  let lines = '';
  for (const [n, v] of set) lines += n + ': ' + v + '\r\n';
  for (const [n, v] of add) lines += n + ': ' + v + '\r\n';
  return { drop, add: latin1Bytes(lines) };
}

/** The UTF-8 bytes of `s` as a latin1 string, so that `socket.write(x, 'latin1')` sends them. */
function latin1Bytes(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}

/** What an answering route reads of the request. */
export interface AnswerRequest {
  readonly method: string;
  /** Normalised path. */
  readonly path: string;
  /** Query without '?', or ''. */
  readonly query: string;
  /** Normalised Host (lower-case, no port). */
  readonly host: string;
}

/** A route that Portico answers itself instead of forwarding (`redirect`, `respond`). */
export interface RouteAnswer {
  readonly status: number;
  /** The whole response, head and body, as a latin1 string of its bytes. */
  render(req: AnswerRequest, scheme: string, keepAlive: boolean): string;
}

function statusLine(status: number): string {
  return 'HTTP/1.1 ' + status + ' ' + (STATUS_CODES[status] ?? 'Status') + '\r\n';
}

/** The parts of a location template: literal text and {scheme} {host} {path} {query}. */
type Part = string | 0 | 1 | 2 | 3;
const PLACEHOLDER: Readonly<Record<string, Part>> = { scheme: 0, host: 1, path: 2, query: 3 };

function compileTemplate(t: string): Part[] {
  const parts: Part[] = [];
  let at = 0;
  for (const m of t.matchAll(/\{(scheme|host|path|query)\}/g)) {
    if (m.index > at) parts.push(t.slice(at, m.index));
    parts.push(PLACEHOLDER[m[1]!]!);
    at = m.index + m[0].length;
  }
  if (at < t.length) parts.push(t.slice(at));
  return parts;
}

/**
 * `redirect: { status, location }`: the location template is cut into parts once; a request only
 * concatenates them. `{host}` is the normalised Host, `{path}` the normalised path, `{query}` the
 * query with its '?' (or nothing).
 */
export function compileRedirect(status: number, location: string, extraHeaders: string): RouteAnswer {
  const parts = compileTemplate(location);
  const head = statusLine(status);
  const tail = 'Content-Length: 0\r\n' + latin1Bytes(extraHeaders);
  return {
    status,
    render(req, scheme, keepAlive) {
      let loc = '';
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        if (typeof p === 'string') loc += p;
        else if (p === 0) loc += scheme;
        else if (p === 1) loc += req.host;
        else if (p === 2) loc += req.path;
        else if (req.query !== '') loc += '?' + req.query;
      }
      return head + 'Location: ' + loc + '\r\n' + tail + (keepAlive ? '\r\n' : 'Connection: close\r\n\r\n');
    },
  };
}

/**
 * `respond: { status, body, headers }`: the four possible responses (keep-alive or not, HEAD or
 * not) are built once; a request picks one.
 */
export function compileRespond(status: number, body: string, headers: Readonly<Record<string, string>>, extraHeaders: string): RouteAnswer {
  const bytes = Buffer.from(body, 'utf8');
  let head = statusLine(status);
  const given = new Set(Object.keys(headers).map((n) => n.toLowerCase()));
  for (const [n, v] of Object.entries(headers)) head += n + ': ' + v + '\r\n';
  if (!given.has('content-type') && bytes.length > 0) head += 'Content-Type: text/plain; charset=utf-8\r\n';
  if (status !== 204 && status !== 304) head += 'Content-Length: ' + bytes.length + '\r\n';
  head = latin1Bytes(head + extraHeaders);
  const b = bytes.toString('latin1');
  const keep = head + '\r\n';
  const close = head + 'Connection: close\r\n\r\n';
  const keepBody = keep + b;
  const closeBody = close + b;
  return {
    status,
    render(req, _scheme, keepAlive) {
      if (req.method === 'HEAD') return keepAlive ? keep : close;
      return keepAlive ? keepBody : closeBody;
    },
  };
}
