/**
 * The configuration reference (docs/configuration.md), generated from the schema: every key with
 * its full path, type, default and description. `npm run docs:config` writes it; a test fails when
 * the file is stale.
 */
import { EXAMPLE_CONFIG } from './example.js';
import { configSchema } from './schema/root.js';
import {
  discriminatorOf,
  elementOf,
  enumValues,
  inspectKey,
  kindOf,
  literalValues,
  objectBranch,
  optionsOf,
  shapeOf,
  type AnySchema,
  type KeyInfo,
} from './schema-walk.js';

interface Section {
  readonly title: string;
  readonly description: string | undefined;
  readonly rows: readonly string[];
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function flow(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(flow).join(', ')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v);
    return entries.length === 0 ? '{}' : `{ ${entries.map(([k, x]) => `${k}: ${flow(x)}`).join(', ')} }`;
  }
  if (v === '') return '""';
  return String(v);
}

function typeName(info: KeyInfo): string {
  if (info.docType !== undefined) return info.docType;
  const s = info.core;
  switch (kindOf(s)) {
    case 'object':
      return 'mapping';
    case 'union':
      return 'mapping';
    case 'array': {
      const el = inspectKey(elementOf(s));
      const t = typeName(el);
      return t === 'mapping' ? 'list of mappings' : `list of ${t}`;
    }
    case 'enum':
      return enumValues(s).join(' | ');
    case 'literal':
      return literalValues(s).map(String).join(' | ');
    default:
      return kindOf(s);
  }
}

function defaultCell(info: KeyInfo): string {
  if (info.defaultText !== undefined) return info.defaultText;
  if (info.hasDefault) return `\`${flow(info.defaultValue)}\``;
  return info.optional ? 'unset' : '**required**';
}

/** A mapping that has its own section, and under which name. */
function nested(path: string, info: KeyInfo): { path: string; schema: AnySchema; info: KeyInfo } | undefined {
  const s = info.core;
  switch (kindOf(s)) {
    case 'object':
      return { path, schema: s, info };
    case 'union': {
      if (discriminatorOf(s) !== undefined) return { path, schema: s, info };
      const branch = objectBranch(s);
      if (branch === undefined) return undefined;
      const b = inspectKey(branch);
      return { path, schema: b.core, info: { ...b, description: b.description ?? info.description } };
    }
    case 'array': {
      const el = inspectKey(elementOf(s));
      return kindOf(el.core) === 'object' || kindOf(el.core) === 'union' ? nested(`${path}[]`, el) : undefined;
    }
    default:
      return undefined;
  }
}

class Renderer {
  readonly sections: Section[] = [];
  private readonly seen = new Set<string>();
  /** The schema whose section a path's title names (the first written). */
  private readonly schemaAt = new Map<string, AnySchema>();

  /**
   * `variant` names the member of a union this object is (`protocol: https`): a key under it whose
   * section another member already wrote with another schema (an https listener's `limits`) gets
   * its own, titled with the variant.
   */
  object(title: string, prefix: string, schema: AnySchema, description: string | undefined, discriminator?: string, variant?: string): void {
    if (this.seen.has(title)) return;
    this.seen.add(title);
    const rows: string[] = [];
    const children: { path: string; title: string; schema: AnySchema; info: KeyInfo }[] = [];
    for (const [key, child] of Object.entries(shapeOf(schema))) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      const found = inspectKey(child);
      const info = key === discriminator && found.description === undefined ? { ...found, description: 'Selects this kind' } : found;
      const sub = nested(path, info);
      const written = sub === undefined ? undefined : this.schemaAt.get(sub.path);
      const subTitle = sub === undefined ? '' : written !== undefined && written !== sub.schema && variant !== undefined ? `${sub.path} (${variant})` : sub.path;
      if (sub !== undefined && written === undefined) this.schemaAt.set(sub.path, sub.schema);
      const see = sub !== undefined ? ` (see \`${subTitle}\`)` : '';
      rows.push(`| \`${path}\` | ${cell(typeName(info))} | ${cell(defaultCell(info))} | ${cell((info.description ?? '') + see)} |`);
      if (sub !== undefined) children.push({ ...sub, title: subTitle });
    }
    this.sections.push({ title, description, rows });
    for (const c of children) this.node(c.path, c.schema, c.info.description, c.title, variant);
  }

  node(path: string, schema: AnySchema, description: string | undefined, title = path, variant?: string): void {
    const disc = discriminatorOf(schema);
    if (kindOf(schema) !== 'union' || disc === undefined) {
      this.object(title, path, schema, description, undefined, variant);
      return;
    }
    // A member may itself be a union by another key (protocol tcp: by dataPlane): its members are listed alike.
    const variants: { info: KeyInfo; name: string; label: string }[] = [];
    const valueOf = (core: AnySchema, key: string): string => String(literalValues(inspectKey(shapeOf(core)[key]!).core)[0]);
    for (const o of optionsOf(schema)) {
      const info = inspectKey(o);
      const inner = discriminatorOf(info.core);
      if (kindOf(info.core) !== 'union' || inner === undefined) {
        const name = valueOf(info.core, disc);
        variants.push({ info, name, label: `${disc}: ${name}` });
        continue;
      }
      for (const io of optionsOf(info.core)) {
        const ii = inspectKey(io);
        const name = valueOf(ii.core, disc);
        const sub = inspectKey(shapeOf(ii.core)[inner]!);
        variants.push({ info: ii, name, label: sub.optional ? `${disc}: ${name}` : `${disc}: ${name}, ${inner}: ${valueOf(ii.core, inner)}` });
      }
    }
    if (!this.seen.has(path)) {
      this.seen.add(path);
      const list = [...new Set(variants.map((v) => v.name))].map((n) => `\`${n}\``).join(', ');
      this.sections.push({ title: path, description: `${description ?? ''}\n\n\`${disc}\` is one of ${list}; each has its own keys, below.`, rows: [] });
    }
    for (const v of variants) this.object(`${path} (${v.label})`, path, v.info.core, v.info.description, disc, v.label);
  }
}

const INTRO = `# Configuration reference

Portico reads one YAML file (\`portico start -c portico.yaml\`); JSON is accepted too, as is the
same tree passed as an object to \`createPortico()\`. \`portico check -c FILE\` (default
\`./portico.yaml\`, as \`start\`) validates a file and the files it names as \`start\` loads them
(certificates and keys readable, parsed and matching; CAs and CRLs readable; relative paths from
the working directory), and prints every problem as \`FILE:LINE:COL path.to.key: message\`.

This page is generated from the schema in \`src/config/schema/\` and each listener kind's
\`schema.ts\` (beside its \`kind.ts\`) by \`npm run docs:config\`; a test fails when it is stale. Do not edit it by hand.

## Conventions

- **Unknown keys are errors**, so typos are caught (with a suggestion when one is close).
- **Paths** in messages and below name keys from the root with dots; list items by index in
  messages (\`pools.0.servers.1.address\`) and by \`[]\` on this page (\`pools[].servers[].address\`).
- **Durations**: \`250ms\`, \`2s\`, \`1m\`, \`1h\`, \`1d\`, compounds such as \`1m30s\`. In a file a
  duration needs its unit (\`interval: 2\` is refused and the message says so; only \`0\` needs
  none); an object given to \`createPortico()\` may also give a number of milliseconds. Timers are
  capped at 24 days (Node.js's limit). In the parsed configuration a duration is a number of
  milliseconds under the same key.
- **Addresses**: \`host:port\` or \`[ipv6]:port\`; the host is required (\`0.0.0.0\` binds every
  interface). Listener ports are 0-65535 (0 takes any free port), server ports 1-65535.
  Quote an IPv6 address in YAML (\`'[::1]:8080'\`): a bare \`[\` opens a list. Parsed: \`{ host, port }\`.
- **CIDR**: \`10.0.0.0/8\`, \`2001:db8::/32\`, or a single address.
- **Rates**: \`COUNT/PERIOD\`: \`100/s\`, \`6000/m\`, \`50/10s\`. Parsed: \`{ count, perMs }\`.
- **Status ranges**: \`200-399\`, \`200,204\`, \`200-299,304\`. Parsed: a list of \`[lo, hi]\`.
- **Regular expressions** are JavaScript syntax, unanchored, case-sensitive; they must compile.
- **Environment**: \`\${VAR}\` and \`\${VAR:-default}\` in any string value are replaced from the
  environment (the default applies when VAR is unset or empty); an unset VAR with no default is
  an error that names it. \`$\${\` writes a literal \`\${\`. Inside a flow collection (\`{ ... }\`,
  \`[ ... ]\`) put such a value in quotes. A number or boolean key also takes the digits or
  \`true\`/\`false\` as a string, so that it can come from the environment.
- **Names** (listeners, pools, servers, routes) are 1-64 letters, digits, \`.\`, \`_\` or \`-\`.
- **Cross-checks**: names are unique (listeners, pools, servers in a pool, routes in a listener);
  every \`pool:\` names a pool that exists; no two listeners (nor the admin API) bind the same
  address and port (port 0 excepted); \`hash\` and \`lard\` options only with that \`balance\`;
  a route without \`match\` is the last of its listener; a pool with discovery other than
  \`static\` lists no servers; an admin API on a non-loopback address has a token.

## Example

\`\`\`yaml
${EXAMPLE_CONFIG}\`\`\`
`;

const TOP = 'Top level';

/** The whole reference page, in Markdown. */
export function renderConfigDocs(): string {
  const r = new Renderer();
  r.object(TOP, '', configSchema, undefined);
  const body = r.sections.map((s) => {
    const head = s.title === TOP ? `## ${TOP}` : `## \`${s.title}\``;
    const desc = s.description !== undefined && s.description.trim() !== '' ? `\n${s.description.trim()}\n` : '';
    const table = s.rows.length === 0 ? '' : `\n| key | type | default | description |\n|---|---|---|---|\n${s.rows.join('\n')}\n`;
    return `${head}\n${desc}${table}`;
  });
  return `${INTRO}\n${body.join('\n')}`;
}
