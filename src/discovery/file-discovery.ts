import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DiscoveryError, parseServerEntry, type Discovery, type ServerSpec } from './discovery.js';

export interface FileDiscoveryOptions {
  readonly path: string;
  /** The file is also checked this often, in case a change notification is missed (default 1 s). */
  readonly pollMs?: number;
}

/**
 * Servers from a YAML or JSON file: a list of servers (the keys of a server in the
 * configuration file), or an object with such a list under `servers`. The file is read
 * again when it changes (replaced by a rename too). An invalid file is a failure: the last
 * good list stays.
 */
export class FileDiscovery implements Discovery {
  readonly name: string;
  private readonly path: string;
  private readonly pollMs: number;

  constructor(opts: FileDiscoveryOptions) {
    this.path = opts.path;
    this.pollMs = opts.pollMs ?? 1000;
    this.name = `file ${opts.path}`;
  }

  async *watch(signal: AbortSignal): AsyncIterable<readonly ServerSpec[]> {
    let wake: (() => void) | undefined;
    const poke = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    let watcher: FSWatcher | undefined;
    const file = basename(this.path);
    try {
      // The directory is watched: editors and deploy tools replace the file by a rename.
      watcher = fsWatch(dirname(this.path), { persistent: false }, (_ev, name) => {
        if (name === null || name === file) poke();
      });
      watcher.on('error', () => poke());
    } catch {
      watcher = undefined; // polling alone
    }
    const onAbort = (): void => poke();
    signal.addEventListener('abort', onAbort);
    try {
      let seen: string | undefined;
      while (!signal.aborted) {
        const version = await this.version();
        if (version !== seen) {
          seen = version;
          yield this.read();
        }
        if (signal.aborted) break;
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(poke, this.pollMs);
        });
        clearTimeout(timer);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      watcher?.close();
    }
  }

  private async version(): Promise<string> {
    try {
      const s = await stat(this.path);
      return `${s.ino}/${s.size}/${s.mtimeMs}`;
    } catch (err) {
      throw new DiscoveryError(this.name, `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  }

  private async read(): Promise<readonly ServerSpec[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      throw new DiscoveryError(this.name, `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    let doc: unknown;
    try {
      doc = parseYaml(text, { maxAliasCount: 100 });
    } catch (err) {
      throw new DiscoveryError(this.name, `not YAML or JSON: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
    return parseServerList(doc, this.name);
  }
}

/** A list of servers, or `{ servers: [...] }`; every entry must be valid or the whole list is refused. */
export function parseServerList(doc: unknown, provider: string): ServerSpec[] {
  const list = Array.isArray(doc) ? doc : typeof doc === 'object' && doc !== null && Array.isArray((doc as { servers?: unknown }).servers) ? (doc as { servers: unknown[] }).servers : undefined;
  if (doc === null || doc === undefined) return [];
  if (list === undefined) throw new DiscoveryError(provider, 'expected a list of servers, or an object with a list under servers');
  const out: ServerSpec[] = [];
  const problems: string[] = [];
  list.forEach((raw: unknown, i: number) => {
    const r = parseServerEntry(raw);
    if (r.ok) out.push(r.server);
    else problems.push(`entry ${i}: ${r.message}`);
  });
  if (problems.length > 0) throw new DiscoveryError(provider, `invalid servers (the list is refused): ${problems.join('; ')}`);
  return out;
}
