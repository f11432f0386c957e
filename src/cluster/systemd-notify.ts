import { spawn } from 'node:child_process';

/**
 * Tell systemd that Portico is ready (a `Type=notify` unit, contrib/portico.service): once every
 * listener is up, in the process systemd started (the primary with cluster.workers). Node.js
 * cannot write to the notify socket (a Unix datagram socket), so `systemd-notify` does, naming
 * this process as the main one; the unit sets `NotifyAccess=all` for it. Does nothing outside
 * systemd (no $NOTIFY_SOCKET); a failure is logged, never fatal.
 */
export function notifyReady(log: { warn(msg: string): void }, env: NodeJS.ProcessEnv = process.env): void {
  if (env['NOTIFY_SOCKET'] === undefined || env['NOTIFY_SOCKET'] === '') return;
  const child = spawn('systemd-notify', ['--ready', `--pid=${process.pid}`], { stdio: 'ignore', env });
  child.on('error', (err) => log.warn(`systemd-notify could not run: ${err.message} (systemd is not told that Portico is ready)`));
  child.on('exit', (code) => {
    if (code !== 0 && code !== null) log.warn(`systemd-notify --ready exited with code ${code}`);
  });
}
