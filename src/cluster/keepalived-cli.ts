import { writeFileSync } from 'node:fs';
import '../balancer/index.js';
import { ConfigError } from '../config/errors.js';
import { loadConfigFile } from '../config/load.js';
import type { KernelListenerConfig } from '../config/types.js';
import { KEEPALIVED_USAGE, KeepalivedUsageError, listenerPortsOn, parseKeepalivedArgs, readyUrlFor, renderKeepalivedConfig, renderNftRules } from './keepalived.js';

export interface KeepalivedIo {
  out(s: string): void;
  err(s: string): void;
}

/** `portico keepalived …`: 0 written, 1 the configuration file is invalid, 2 usage error. */
export function runKeepalived(argv: readonly string[], io: KeepalivedIo): number {
  try {
    const args = parseKeepalivedArgs(argv);
    if (args.help) {
      io.out(KEEPALIVED_USAGE);
      return 0;
    }
    let options = args.options;
    const ports = [...args.ports];
    if (args.configFile !== undefined) {
      const config = loadConfigFile(args.configFile);
      if (!config.admin.enabled) {
        io.err(`portico keepalived: ${args.configFile} turns the admin API off (admin.enabled: false); the readiness check needs it\n`);
        return 1;
      }
      // A kernel listener on the address checks at start that this host holds it: behind
      // keepalived neither node does until its readiness check passes, so neither would start.
      const vipAddr = options.vip.split('/')[0]!.toLowerCase();
      const held = config.listeners.filter(
        (l): l is KernelListenerConfig => 'dataPlane' in l && l.dataPlane === 'kernel' && l.listen.host.toLowerCase() === vipAddr && l.kernel.addressHeldBy !== 'keepalived',
      );
      if (held.length > 0) {
        for (const l of held) {
          io.err(`portico keepalived: ${args.configFile}: kernel listener ${l.name} is on ${vipAddr}, which keepalived moves: set its kernel.addressHeldBy: keepalived, or Portico refuses to start on a node that does not hold the address (and keepalived gives it to no node that is not ready)\n`);
        }
        return 1;
      }
      const https = config.admin.tls !== false;
      options = { ...options, readyUrl: readyUrlFor(config.admin.listen, https), readyInsecure: https };
      ports.push(...listenerPortsOn(options.vip, config.listeners));
    }
    const text = renderKeepalivedConfig(options);
    // Both are rendered before either is written: a usage error leaves no file half made.
    const nft = args.nftOut === undefined ? undefined : renderNftRules(options.vip, ports);
    if (args.nftOut !== undefined && nft !== undefined) writeFileSync(args.nftOut, nft, { mode: 0o644 });
    if (args.out !== undefined) writeFileSync(args.out, text, { mode: 0o644 });
    else io.out(text);
    return 0;
  } catch (err) {
    if (err instanceof KeepalivedUsageError) {
      io.err(`portico keepalived: ${err.message}\n\n${KEEPALIVED_USAGE}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      for (const line of err.lines()) io.err(line + '\n');
      return 1;
    }
    throw err;
  }
}
