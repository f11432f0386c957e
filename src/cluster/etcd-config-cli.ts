import { readFileSync } from 'node:fs';
import '../balancer/index.js'; // the balancers a configuration may name
import { ConfigError } from '../config/errors.js';
import { parseConfigText } from '../config/load.js';
import { CONFIG_KEY, pushConfig } from './etcd-config.js';
import { parseEtcdUrl } from '../discovery/etcd-url.js';

export const CONFIG_USAGE = `Usage: portico ctl config push FILE [--etcd etcd://HOST:PORT/PREFIX]

Validate FILE as portico check does and store it in etcd as the configuration of every node
whose cluster.config names the same etcd://HOST:PORT/PREFIX. Nothing is stored when FILE is
invalid. The etcd URL is --etcd, else $PORTICO_ETCD, else FILE's own cluster.config.

Exit codes: 0 stored, 1 FILE is invalid (every error printed), 2 usage error, 3 etcd unreachable.
`;

export interface ConfigCtlIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

/** `portico ctl config ARGS` (ARGS after the word `config`); resolves with the exit code. */
export async function runConfigCtl(argv: readonly string[], io: ConfigCtlIo): Promise<number> {
  const env = io.env ?? process.env;
  const words: string[] = [];
  let etcd: string | undefined = env.PORTICO_ETCD === '' ? undefined : env.PORTICO_ETCD;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--etcd') {
      const v = argv[++i];
      if (v === undefined) return usage(io, '--etcd needs a URL');
      etcd = v;
    } else if (a.startsWith('--etcd=')) etcd = a.slice(7);
    else if (a === '-h' || a === '--help') {
      io.out(CONFIG_USAGE);
      return 0;
    } else if (a.startsWith('-')) return usage(io, `unknown option ${a}`);
    else words.push(a);
  }
  if (words[0] !== 'push' || words.length !== 2) return usage(io, words[0] === 'push' ? 'config push needs one FILE' : `unknown config command ${words[0] ?? '(none)'}`);
  const file = words[1]!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    io.err(`${file}: cannot read the configuration: ${(err as NodeJS.ErrnoException).code ?? String(err)}\n`);
    return 1;
  }
  let clusterConfig: string;
  try {
    clusterConfig = parseConfigText(text, file, env).cluster.config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const line of err.lines()) io.err(line + '\n');
    io.err(`portico ctl: ${file} is invalid; nothing was stored\n`);
    return 1;
  }
  const url = etcd ?? (clusterConfig.startsWith('etcd://') ? clusterConfig : undefined);
  if (url === undefined) return usage(io, `where to store ${file}? give --etcd etcd://HOST:PORT/PREFIX (its cluster.config is ${clusterConfig})`);
  let prefix: string;
  try {
    prefix = parseEtcdUrl(url).prefix;
  } catch (err) {
    return usage(io, (err as Error).message);
  }
  try {
    const revision = await pushConfig(url, text);
    io.out(`stored ${file} as ${prefix}${CONFIG_KEY} in ${url} (revision ${revision})\n`);
    return 0;
  } catch (err) {
    io.err(`portico ctl: etcd ${url} cannot be reached: ${(err as Error).message}\n`);
    return 3;
  }
}

function usage(io: ConfigCtlIo, message: string): number {
  io.err(`portico ctl config: ${message}\n\n${CONFIG_USAGE}`);
  return 2;
}
