/** A YAML (or JSON) document with the position of every key, for messages that point into the file. */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Scalar } from 'yaml';
import type { ConfigPath } from './path.js';

export interface Position {
  readonly line: number;
  readonly col: number;
}

export interface SyntaxIssue extends Position {
  readonly message: string;
}

export interface YamlSource {
  readonly doc: Document;
  readonly syntaxIssues: readonly SyntaxIssue[];
  /** Where `path` is: its key in a mapping, or the item in a list; else the nearest enclosing one. */
  positionOf(path: ConfigPath): Position;
  /** Every scalar value (not keys) with its path, for `${VAR}` substitution. */
  scalars(): Iterable<[Scalar, ConfigPath]>;
}

const IPV6_UNQUOTED = /(^|[\s,{[])\[[0-9A-Fa-f:.]+\]:\d/;

const pathKey = (path: ConfigPath): string => path.map(String).join('\0');

export function readYaml(text: string): YamlSource {
  const lines = new LineCounter();
  // logLevel 'error': problems become issues below instead of process warnings.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  const pos = (offset: number): Position => lines.linePos(offset);
  const sourceLines = text.split('\n');
  const syntaxIssues: SyntaxIssue[] = doc.errors.map((e) => {
    const at = pos(e.pos[0]);
    // An unquoted [v6]:port opens a flow list; say so rather than leave the parser's words alone.
    const hint = IPV6_UNQUOTED.test(sourceLines[at.line - 1] ?? '') ? " (put an IPv6 address in quotes: '[::1]:8080')" : '';
    return { ...at, message: e.message + hint };
  });

  const offsets = new Map<string, number>();
  const values: [Scalar, ConfigPath][] = [];
  const walk = (node: Node | null, path: ConfigPath): void => {
    if (node === null || isAlias(node)) return;
    if (isScalar(node)) {
      values.push([node, path]);
    } else if (isMap(node)) {
      for (const pair of node.items) {
        const key = pair.key as Node | null;
        if (!isScalar(key)) {
          const at = key?.range?.[0] ?? node.range?.[0] ?? 0;
          const message = key === null ? 'an entry without a key' : 'a key must be a plain value, not a list or a mapping (put an IPv6 address in quotes)';
          syntaxIssues.push({ ...pos(at), message });
          continue;
        }
        const p = [...path, String(key.value)];
        if (key.range !== undefined && key.range !== null) offsets.set(pathKey(p), key.range[0]);
        walk(pair.value as Node | null, p);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const p = [...path, i];
        const n = item as Node | null;
        if (n !== null && n.range !== undefined && n.range !== null) offsets.set(pathKey(p), n.range[0]);
        walk(n, p);
      });
    }
  };
  const root = doc.contents as Node | null;
  offsets.set(pathKey([]), root?.range?.[0] ?? 0);
  walk(root, []);

  return {
    doc,
    syntaxIssues,
    positionOf(path) {
      for (let n = path.length; n >= 0; n--) {
        const at = offsets.get(pathKey(path.slice(0, n)));
        if (at !== undefined) return pos(at);
      }
      return { line: 1, col: 1 };
    },
    scalars: () => values,
  };
}
