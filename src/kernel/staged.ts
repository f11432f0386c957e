/**
 * Writing a new version of a table without a moment where its flows lose their rules. Measured
 * on this kernel: a transaction that deletes the table and declares it again (or that creates an
 * interval map and, in the same transaction, a rule that looks it up) lets about one new flow in
 * a thousand through unmatched while it commits: it reaches the host's own stack and is refused.
 * Flushing an existing map or chain and filling it again in one transaction is hitless, and so is
 * a rule that looks up a map created by an earlier transaction.
 *
 * So a table that exists is changed in two transactions, from what it holds (`prev`) to what is
 * wanted (`next`), both as top-level declarations:
 *   - stage: the counters, maps and sets that do not exist yet, with their elements;
 *   - commit: every chain flushed and declared again with its new rules, every kept static map
 *     flushed and filled again, what is gone deleted (chains, then maps, then counters). Kept
 *     dynamic maps (persistence entries, flows) and kept counters are not touched, so their
 *     entries and counts go on. (A process's first write, from what it found in the kernel,
 *     declares the dynamic maps afresh: a restart starts persistence and flows anew.)
 * A map or chain whose declaration changed (its type, flags, timeout, hook) is deleted and
 * declared again in the commit: for it alone the old hazard remains.
 *
 * Pure: src/kernel/plane.ts reads what the kernel holds and applies the two scripts.
 */

export type DeclKind = 'counter' | 'map' | 'set' | 'chain';

/** One top-level declaration of a table: `counter NAME {...}`, `map NAME {...}`, `set NAME {...}`, `chain NAME {...}`. */
export interface Decl {
  readonly kind: DeclKind;
  readonly name: string;
  /** The whole declaration as written. */
  readonly text: string;
  /** What must be equal for the object to be kept (maps, sets: every statement but the elements; chains: type and policy), normalised. */
  readonly header: string;
  /** A map or set filled by the packet path (`flags dynamic`): its entries are state, never flushed. */
  readonly dynamic: boolean;
}

/** A table's declarations by namespace key (`counter NAME`, `set NAME` for maps and sets, `chain NAME`). */
export type Decls = ReadonlyMap<string, Decl>;

const KINDS: ReadonlySet<string> = new Set(['counter', 'map', 'set', 'chain']);

const keyOf = (kind: DeclKind, name: string): string => `${kind === 'map' ? 'set' : kind} ${name}`;

/**
 * The declarations of `table FAMILY TABLE { ... }` in an nft script or in `nft list table`
 * output (every block of that table, the last `delete table` of it starting again from none).
 * Objects of other kinds (flowtables, quotas) are not Portico's: they are ignored.
 */
export function parseDeclarations(text: string, family: string, table: string): Map<string, Decl> {
  const out = new Map<string, Decl>();
  const statements = splitStatements(text);
  const head = `table ${family} ${table}`;
  for (const s of statements) {
    const words = s.trim().replace(/\s+/g, ' ');
    if (words === `delete ${head}`) {
      out.clear();
      continue;
    }
    if (!words.startsWith(`${head} {`) && !words.startsWith(`${head}{`)) continue;
    const body = inner(s);
    if (body === undefined) continue;
    for (const d of splitStatements(body)) {
      const decl = declaration(d);
      if (decl !== undefined) out.set(keyOf(decl.kind, decl.name), decl);
    }
  }
  return out;
}

/**
 * The two transactions that bring a table from `prev` to `next` (stage may be empty).
 * `keepDynamic: false` (what the process found in the kernel at its start: its entries may name
 * servers that left meanwhile) declares the dynamic maps afresh, empty.
 */
export function stagedScripts(family: string, table: string, prev: Decls, next: Decls, o: { keepDynamic: boolean } = { keepDynamic: true }): { stage: string; commit: string } {
  const t = `${family} ${table}`;
  const kept = (key: string): boolean => {
    const a = prev.get(key);
    const b = next.get(key);
    return a !== undefined && b !== undefined && a.kind === b.kind && a.header === b.header && (o.keepDynamic || !a.dynamic);
  };
  const created = [...next.entries()].filter(([k, d]) => d.kind !== 'chain' && !prev.has(k));
  // Counters first: the counter maps created with them name them.
  created.sort(([, a], [, b]) => Number(a.kind !== 'counter') - Number(b.kind !== 'counter'));
  const stage = created.length === 0 ? '' : `table ${t} {\n${created.map(([, d]) => indent(d.text)).join('\n')}\n}\n`;

  const cmds: string[] = [];
  const prevOf = (kind: DeclKind): [string, Decl][] => [...prev.entries()].filter(([, d]) => d.kind === kind);
  const prevChains = prevOf('chain');
  const prevSets = [...prevOf('map'), ...prevOf('set')];
  for (const [, d] of prevChains) cmds.push(`flush chain ${t} ${d.name}`);
  for (const [k, d] of prevSets) if (kept(k) && !d.dynamic) cmds.push(`flush ${d.kind} ${t} ${d.name}`);
  for (const [k, d] of prevChains) if (!kept(k)) cmds.push(`delete chain ${t} ${d.name}`);
  for (const [k, d] of prevSets) if (!kept(k)) cmds.push(`delete ${d.kind} ${t} ${d.name}`);
  for (const [k, d] of prevOf('counter')) if (!next.has(k)) cmds.push(`delete counter ${t} ${d.name}`);
  const declared: string[] = [];
  for (const [k, d] of next) {
    if (d.kind === 'counter') continue; // new ones staged, kept ones go on counting
    if (d.kind !== 'chain') {
      if (!prev.has(k)) continue; // staged with its elements
      if (kept(k) && prev.get(k)!.dynamic) continue; // its entries are state
    }
    declared.push(indent(d.text));
  }
  if (declared.length > 0) cmds.push(`table ${t} {\n${declared.join('\n')}\n}`);
  return { stage, commit: cmds.length === 0 ? '' : `${cmds.join('\n')}\n` };
}

function indent(text: string): string {
  return `  ${text}`;
}

function declaration(s: string): Decl | undefined {
  const m = /^\s*(counter|map|set|chain)\s+("[^"]*"|[A-Za-z0-9_.$-]+)\s*\{/.exec(s);
  if (m === null || !KINDS.has(m[1]!)) return undefined;
  const kind = m[1] as DeclKind;
  const name = m[2]!.replace(/^"|"$/g, '');
  const body = inner(s) ?? '';
  const parts = splitStatements(body).map((x) => x.trim().replace(/\s+/g, ' ')).filter((x) => x !== '');
  let header: string[];
  if (kind === 'chain') header = parts.filter((x) => /^(type|policy) /.test(x));
  else if (kind === 'counter') header = [];
  else header = parts.filter((x) => !/^elements ?=/.test(x)).map(normaliseDurations);
  header.sort();
  const dynamic = (kind === 'map' || kind === 'set') && header.some((x) => /^flags .*\bdynamic\b/.test(x));
  return { kind, name, text: s.trim(), header: header.join('; '), dynamic };
}

/** `timeout 5m` and `timeout 300s` alike (nft lists durations in its own units). */
function normaliseDurations(statement: string): string {
  return statement.replace(/\b((?:\d+d)?(?:\d+h)?(?:\d+m(?!s))?(?:\d+s)?(?:\d+ms)?)\b/g, (whole) => {
    if (!/[dhms]$/.test(whole) || !/^\d/.test(whole)) return whole;
    let ms = 0;
    for (const [, n, u] of whole.matchAll(/(\d+)(ms|d|h|m|s)/g)) ms += Number(n) * ({ d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const)[u as 'd' | 'h' | 'm' | 's' | 'ms'];
    return `${ms}ms`;
  });
}

/** The text between a statement's first `{` and its matching `}`. */
function inner(s: string): string | undefined {
  const open = s.indexOf('{');
  if (open < 0) return undefined;
  let depth = 0;
  let quoted = false;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '"') quoted = !quoted;
    if (quoted) continue;
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return s.slice(open + 1, i);
  }
  return undefined;
}

/**
 * Statements at the outer level of `text`: ended by a newline or `;` outside braces and quotes,
 * or by the `}` that closes a block they opened (a block's statement is one, newlines inside
 * included). Comments (`#` to the end of the line) are dropped.
 */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      cur += c;
      if (c === '"') quoted = false;
      continue;
    }
    if (c === '#') {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
      continue;
    }
    if (c === '"') quoted = true;
    if (c === '{') depth++;
    if (c === '}') depth--;
    if (depth === 0 && (c === '\n' || c === ';')) {
      if (cur.trim() !== '') out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
    if (depth === 0 && c === '}') {
      out.push(cur);
      cur = '';
    }
  }
  if (cur.trim() !== '') out.push(cur);
  return out;
}
