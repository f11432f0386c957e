// V8 settings first, before anything is allocated (src/cli/heap-flags.ts).
import './heap-flags.js';
import { existsSync, readFileSync } from 'node:fs';
import { runCheck } from '../config/check.js';
import { ConfigError } from '../config/errors.js';
import { buildPool, buildServer, createPortico, markValidated, type Portico, type PorticoDeps } from '../app/app.js';
import type { Config } from '../config/types.js';
import { runDemo } from './demo.js';
import { runCtl } from './ctl.js';
import { runKeepalived } from '../cluster/keepalived-cli.js';
import { runDsrSetup } from './dsr-setup.js';
import { isWorkerProcess, startPrimary, startWorker } from '../cluster/workers.js';
import { loadStartConfig, type StartConfig } from '../cluster/workers-config.js';
import { runSimulate } from '../sim/cli.js';
import { writePidFile } from './pid-file.js';
import { notifyReady } from '../cluster/systemd-notify.js';
import { mountSingleProcessUpgrade, SINGLE_PROCESS_UPGRADE } from '../cluster/upgrade.js';
import { useFileCheck } from '../config/load.js';
import { checkFiles } from '../tls/config-files.js';

// `check`, `start` and every reload read the certificates, keys and CAs a configuration names.
useFileCheck(checkFiles);

const USAGE = `Usage: portico <command> [options]

Commands:
  start [-c FILE]     run with FILE (default ./portico.yaml)
  check [-c FILE]     validate FILE (default ./portico.yaml) and the files it names (certificates, keys,
                      CAs) as start would; print every error as FILE:LINE:COL key: message
  demo                run the demo farm: three servers behind an http listener
  simulate ...        replay a trace through the balancing algorithms (portico simulate --help)
  upgrade [ctl opts]  replace the workers with new ones from the code on disk, without dropping a connection
                      (cluster.workers 2 or more; the admin API's POST /api/v1/upgrade, as portico ctl upgrade)
  ctl ...             the admin API from the shell: status, pools, servers, weight, drain ... (portico ctl --help)
  keepalived ...      write a keepalived configuration for virtual-address take-over (portico keepalived --help)
  dsr-setup ...       print (or --apply) a real server's side of direct server return (portico dsr-setup --help)
  (no command)        start with ./portico.yaml if it exists, else the demo

Options:
  -c, --config FILE   configuration file
  -h, --help          this text
  -v, --version       print the version
`;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

interface Args {
  command: string | undefined;
  config: string | undefined;
  rest: string[];
  help: boolean;
  version: boolean;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { command: undefined, config: undefined, rest: [], help: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '--config') {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a file`);
      out.config = v;
    } else if (a.startsWith('--config=')) out.config = a.slice(9);
    else if (a === '-h' || a === '--help') out.help = true;
    else if (a === '-v' || a === '--version') out.version = true;
    else if (out.command === undefined && !a.startsWith('-')) out.command = a;
    else out.rest.push(a);
  }
  return out;
}

export async function main(argv: string[]): Promise<number | undefined> {
  if (argv[0] === 'ctl' || argv[0] === 'upgrade') {
    return runCtl(argv[0] === 'ctl' ? argv.slice(1) : argv, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  }
  if (argv[0] === 'keepalived') {
    return runKeepalived(argv.slice(1), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  }
  if (argv[0] === 'dsr-setup') {
    return runDsrSetup(argv.slice(1), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  }
  if (argv[0] === 'simulate') {
    return runSimulate(argv.slice(1), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  }
  const args = parseArgs(argv);
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`portico ${version()}\n`);
    return 0;
  }
  switch (args.command) {
    case undefined:
      if (existsSync('portico.yaml')) return start('portico.yaml');
      return runDemo();
    case 'start':
      return start(args.config ?? 'portico.yaml');
    case 'check':
      // As start: ./portico.yaml unless -c names another file.
      return runCheck(args.config ?? args.rest[0] ?? 'portico.yaml', (line) => process.stdout.write(line + '\n'));
    case 'demo':
      return runDemo();
    default:
      process.stderr.write(`portico: unknown command '${args.command}'\n\n${USAGE}`);
      return 2;
  }
}

async function start(file: string): Promise<number | undefined> {
  const deps = { createPortico: (c: Config, o: PorticoDeps) => createPortico(markValidated(c), o), buildPool, buildServer, runUntilSignal: (p: Portico) => runUntilSignal(p) };
  // cluster.workers above 1: this process is one of the workers (its configuration comes from the primary) ...
  if (isWorkerProcess()) {
    await startWorker(file, deps, startFailureText);
    return undefined;
  }
  let portico: Portico;
  let boot: StartConfig;
  try {
    // The file, or the document in etcd that it points at (or its last good copy).
    boot = await loadStartConfig(file);
    // The name ps, top and pidof show (the primary and its workers rename themselves).
    process.title = 'portico';
    if (boot.config.pidFile !== undefined) writePidFile(boot.config.pidFile);
    // ... or the primary of the workers.
    if (await startPrimary(file, boot, deps)) return undefined;
    const source = boot.source;
    portico = createPortico(markValidated(boot.config), { configFile: file, configSource: source === undefined ? undefined : () => source.current! });
    if (portico.admin !== undefined) mountSingleProcessUpgrade(portico.admin.router);
    if (source !== undefined) source.onUpdate = () => portico.reload();
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.lines()) process.stderr.write(line + '\n');
      return 1;
    }
    throw err;
  }
  const etcd = boot.source;
  try {
    await runUntilSignal(portico, etcd === undefined ? undefined : () => etcd.stop());
    notifyReady(portico.log);
  } catch (err) {
    // A listener that cannot bind, a certificate that does not load: said once, and the process ends.
    process.stderr.write(startFailureText(err));
    process.exit(1);
  }
  await etcd?.start();
  return undefined;
}

/**
 * SIGUSR2 where it does not upgrade (the primary's upgrades, src/cluster/upgrade.ts): a worker
 * says where to send it; a single process says why it cannot (instead of ending, SIGUSR2's default).
 */
function upgradeSignalElsewhere(log: { warn(msg: string): void }): void {
  process.on('SIGUSR2', () => {
    if (isWorkerProcess()) log.warn(`SIGUSR2 to worker ${process.pid} ignored: the primary upgrades every worker (kill -USR2 ${process.ppid})`);
    else log.warn(`SIGUSR2: upgrade not done: ${SINGLE_PROCESS_UPGRADE}`);
  });
}

/** What a failed start prints: a ConfigError's lines, or `portico: MESSAGE`. */
function startFailureText(err: unknown): string {
  if (err instanceof ConfigError) return err.lines().join('\n') + '\n';
  return `portico: ${err instanceof Error ? err.message : String(err)}\n`;
}

/** What a stop may take beyond shutdownGrace (the listeners' last cuts, the access log's last lines) before the process exits regardless. */
const STOP_MARGIN_MS = 5000;

/** Start, then stop gracefully on SIGTERM/SIGINT (exit 0). A fault in one connection never ends the process. */
export async function runUntilSignal(portico: Portico, onStop?: () => Promise<void>): Promise<void> {
  // Portico's own logger: a reload's log.level applies to these lines too.
  const log = portico.log;
  process.on('uncaughtException', (err) => log.error('uncaught exception (process continues)', { error: String(err?.stack ?? err) }));
  process.on('unhandledRejection', (err) => log.error('unhandled rejection (process continues)', { error: String(err) }));
  // SIGHUP: reload the configuration file; the outcome (applied, or refused with every error) is
  // logged by the reload. Caught from the first moment, so that an early one does not end the process.
  let started = false;
  let stopping = false;
  // A worker of cluster.workers takes no SIGHUP of its own (one sent to the whole process group,
  // for instance): its primary validates the file once and passes the reload on.
  const worker = isWorkerProcess();
  process.on('SIGHUP', () => {
    if (stopping) return;
    if (worker) {
      // Sent to the whole group, the primary has it too; sent to this worker alone, it says where to send it.
      log.warn(`SIGHUP to worker ${process.pid} ignored: the primary reloads every worker (kill -HUP ${process.ppid})`);
      return;
    }
    if (!started) {
      log.warn('SIGHUP while starting: ignored (send it again once Portico is up)');
      return;
    }
    log.info('SIGHUP: reloading the configuration');
    portico.reload().catch(() => undefined);
  });
  upgradeSignalElsewhere(log);
  await portico.start();
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    const grace = portico.config.shutdownGrace;
    log.info(`${sig}: stopping; in-flight requests get up to ${grace} ms`);
    // Each listener cuts what is left after the grace; should anything still hold the stop, the
    // process ends all the same (status 1, said), rather than outlive its SIGTERM.
    setTimeout(() => {
      log.error(`${sig}: the stop did not end within shutdownGrace + ${STOP_MARGIN_MS} ms: exiting now`);
      process.exit(1);
    }, grace + STOP_MARGIN_MS).unref();
    void portico
      .stop()
      .then(() => onStop?.())
      .then(() => {
        log.info('stopped');
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  started = true;
}
