import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPortico } from '../app/app.js';
import { startDemoBackend, type DemoBackend } from '../app/demo-backends.js';
import { runUntilSignal } from './main.js';

/** The demo farm of SPEC §1: three servers on 127.0.0.1:9101-9103 behind an http listener on :8080 and a dns listener on :5353. */
export const DEMO_CONFIG = {
  admin: { listen: '127.0.0.1:9090' },
  listeners: [
    {
      name: 'web',
      protocol: 'http',
      listen: '127.0.0.1:8080',
      routes: [{ pool: 'web' }],
    },
    {
      name: 'dns',
      protocol: 'dns',
      listen: '127.0.0.1:5353',
      zones: [
        {
          name: 'demo.portico.test',
          records: [
            { name: 'www', type: 'A', pool: 'web', answers: 1 },
            { name: '_http._tcp', type: 'SRV', pool: 'web' },
          ],
        },
      ],
    },
  ],
  pools: [
    {
      name: 'web',
      balance: 'roundrobin',
      servers: [
        { name: 'web1', address: '127.0.0.1:9101', weight: 1 },
        { name: 'web2', address: '127.0.0.1:9102', weight: 1 },
        { name: 'web3', address: '127.0.0.1:9103', weight: 1 },
      ],
    },
  ],
};

export async function runDemo(): Promise<undefined> {
  const backends: DemoBackend[] = [];
  for (const [i, name] of ['web1', 'web2', 'web3'].entries()) {
    backends.push(await startDemoBackend(name, '127.0.0.1', 9101 + i));
  }
  // Runtime changes made through the admin API last as long as this demo run.
  const stateDir = mkdtempSync(join(tmpdir(), 'portico-demo-'));
  const portico = createPortico({ ...DEMO_CONFIG, stateDir });
  await runUntilSignal(portico, async () => {
    await Promise.all(backends.map((b) => b.close()));
    rmSync(stateDir, { recursive: true, force: true });
  });
  const web = portico.address('web')!;
  const dns = portico.address('dns')!;
  process.stdout.write(
    [
      'Portico demo is running:',
      `  http listener   http://${web.host}:${web.port}/   (round-robin over web1, web2, web3)`,
      `  demo servers    http://127.0.0.1:9101/ http://127.0.0.1:9102/ http://127.0.0.1:9103/`,
      '  try: curl -s http://127.0.0.1:8080/   (repeat to see the servers take turns)',
      `  dns listener    ${dns.host}:${dns.port} (UDP and TCP), zone demo.portico.test, answers from the web pool's available servers`,
      `  try: dig @${dns.host} -p ${dns.port} _http._tcp.demo.portico.test SRV +short   (the servers and their ports, rotated)`,
      `  admin API       ${portico.admin?.url ?? ''}/api/v1/status`,
      '  try: npx portico ctl servers web   then   npx portico ctl drain web/web2',
      `  dashboard       ${portico.admin?.url ?? ''}/   (live; drain, ready, maint and weights from the page)`,
      `  metrics         ${portico.admin?.url ?? ''}/metrics   (Prometheus)`,
      'Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
  return undefined;
}
