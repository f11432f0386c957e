import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createPortico, markValidated, type Portico } from '../app/app.js';
import { loadConfigFile } from '../config/load.js';
import { freePort, startOrigins, type Origin } from '../test-helpers/origins.js';
import { EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, runCtl, table, weightOf } from './ctl.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

describe('portico ctl', () => {
  let origins: Origin[];
  let dir: string;
  let file: string;
  let p: Portico;
  let admin: string;
  const ctl = async (...argv: string[]): Promise<Run> => {
    let out = '';
    let err = '';
    const code = await runCtl(['--admin', admin, '--token', 'T0k', ...argv], { out: (s) => (out += s), err: (s) => (err += s), env: {} });
    return { code, out, err };
  };
  const config = (servers: Origin[]): unknown => ({
    log: { level: 'error' },
    admin: { listen: '127.0.0.1:0', token: 'T0k' },
    stateDir: dir,
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [{ name: 'web', servers: servers.map((o) => ({ name: o.name, address: o.address })) }],
  });

  before(async () => {
    origins = await startOrigins(3);
    dir = mkdtempSync(join(tmpdir(), 'portico-ctl-'));
    file = join(dir, 'portico.json');
    writeFileSync(file, JSON.stringify(config(origins.slice(0, 2))));
    p = createPortico(markValidated(loadConfigFile(file)), { configFile: file });
    await p.start();
    admin = `http://127.0.0.1:${p.admin!.address.port}`;
  });
  after(async () => {
    await p.stop(0);
    await Promise.all(origins.map((o) => o.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('status and pools print readable tables', async () => {
    const s = await ctl('status');
    assert.equal(s.code, EXIT_OK, s.err);
    assert.match(s.out, /^node\s+\S+/m);
    assert.match(s.out, /ready\s+yes/);
    assert.match(s.out, new RegExp(`config\\s+${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, generation 1`));
    assert.match(s.out, /LISTENER\s+PROTOCOL\s+ADDRESS\nweb\s+http\s+127\.0\.0\.1:\d+/);
    const pools = await ctl('pools');
    assert.equal(pools.code, EXIT_OK);
    assert.match(pools.out, /POOL\s+BALANCE\s+SERVERS\s+AVAILABLE\s+INFLIGHT\s+RPS\nweb\s+roundrobin\s+2\s+2\s+0/);
  });

  it('servers, weight, drain, ready, maint, add and remove', async () => {
    const list = await ctl('servers', 'web');
    assert.equal(list.code, EXIT_OK);
    assert.match(list.out, /^pool web \(roundrobin\): 2 of 2 available/);
    assert.match(list.out, /\no1\s+127\.0\.0\.1:\d+\s+ready\s+no check\s+1\s+0/);
    assert.deepEqual(await ctl('weight', 'web/o1', '5'), { code: EXIT_OK, out: 'web/o1: weight 5\n', err: '' });
    assert.equal((await ctl('drain', 'web/o2')).out, 'web/o2: drain (active 0)\n');
    assert.match((await ctl('servers', 'web')).out, /\no2\s+\S+\s+drain\s/);
    assert.equal((await ctl('maint', 'web/o2')).out, 'web/o2: maint (active 0)\n');
    assert.equal((await ctl('ready', 'web/o2')).out, 'web/o2: ready (active 0)\n');
    const add = await ctl('add', 'web', 'o3', origins[2]!.address, '--weight', '2');
    assert.equal(add.code, EXIT_OK, add.err);
    assert.equal(add.out, `web/o3: added at ${origins[2]!.address}, weight 2, ready\n`);
    assert.match((await ctl('servers', 'web')).out, /\no3\s+\S+\s+ready\s+no check\s+2\s+0\s+0\s+0\s+-\s+runtime/);
    assert.equal((await ctl('remove', 'web/o3')).out, 'web/o3: removed\n');
    const st = await ctl('status');
    assert.match(st.out, /1 in force\n/, 'o2 is back at its configured state; o3 was registered and removed');
    assert.match(st.out, /web\/o1\s+changed\s+weight=5\s+weight=1/);
  });

  it('a pool without a health section: "no check" (not "up"), and the failures of a dead server with their share', async () => {
    const dead = await freePort();
    assert.equal((await ctl('add', 'web', 'dead', `127.0.0.1:${dead}`)).code, EXIT_OK);
    try {
      const port = p.address('web')!.port;
      // Round robin over three servers: six requests try the dead one at least once (each retried on another).
      for (let i = 0; i < 6; i++) await (await fetch(`http://127.0.0.1:${port}/`)).text();
      const out = (await ctl('servers', 'web')).out;
      assert.match(out, /^no health check: servers are taken as up and only FAILURES shows a dead one/m);
      const row = out.split('\n').find((l) => l.startsWith('dead '))!;
      assert.match(row, /^dead\s+\S+\s+ready\s+no check\s+1\s+0\s+(\d+)\s+\1 \(100%\)\s/, out);
      const body = JSON.parse((await ctl('--json', 'servers', 'web')).out);
      const view = body.servers.find((x: { name: string }) => x.name === 'dead');
      assert.equal(view.health, 'no check');
      assert.equal(view.check, 'none');
      assert.ok(view.failures >= 1 && view.failures === view.requests, JSON.stringify(view));
    } finally {
      await ctl('remove', 'web/dead', '--now');
    }
  });

  it('--json prints the API answer', async () => {
    const r = await ctl('--json', 'servers', 'web');
    assert.equal(r.code, EXIT_OK);
    const body = JSON.parse(r.out);
    assert.equal(body.name, 'web');
    assert.equal(body.servers.length, 2);
  });

  it('refusals print the API error plainly and exit 1', async () => {
    const none = await ctl('servers', 'nope');
    assert.equal(none.code, EXIT_REFUSED);
    assert.equal(none.out, '');
    assert.match(none.err, /^portico ctl: no pool nope \(pools: web\) \(LB_ADMIN_NOT_FOUND\)\n$/);
    const bad = await ctl('add', 'web', 'x', 'not-an-address');
    assert.equal(bad.code, EXIT_REFUSED);
    assert.match(bad.err, /\(LB_ADMIN_INVALID\)\n {2}address: bad address "not-an-address"/);
    let err = '';
    const noToken = await runCtl(['--admin', admin, 'drain', 'web/o1'], { out: () => {}, err: (s) => (err += s), env: {} });
    assert.equal(noToken, EXIT_REFUSED);
    assert.match(err, /LB_ADMIN_UNAUTHORIZED/);
    const json = await ctl('--json', 'weight', 'web/o1', '999');
    assert.equal(json.code, EXIT_REFUSED);
    assert.equal(JSON.parse(json.err).error.code, 'LB_ADMIN_INVALID');
  });

  it('reload prints what changed; an invalid file is refused with every error', async () => {
    writeFileSync(file, JSON.stringify(config(origins)));
    const ok = await ctl('reload');
    assert.equal(ok.code, EXIT_OK, ok.err);
    assert.equal(ok.out, 'reloaded: generation 2\n  pool web: servers added: o3\n');
    writeFileSync(file, '{"pools": [{"name": "web", "servers": [{"name": "a"}]}], "colour": 1}');
    const bad = await ctl('reload');
    assert.equal(bad.code, EXIT_REFUSED);
    assert.match(bad.err, /generation 2 keeps running \(LB_CONFIG_INVALID\)/);
    assert.match(bad.err, /colour: unknown key/);
    assert.match(bad.err, /pools\.0\.servers\.0\.address: missing required key/);
  });

  it('reload says which file values a runtime change overrides; reset drops the change and the file applies', async () => {
    // o1's weight is 5 through the API (above); the file now says 3.
    const pools = [{ name: 'web', servers: origins.map((o, i) => ({ name: o.name, address: o.address, ...(i === 0 ? { weight: 3 } : {}) })) }];
    writeFileSync(file, JSON.stringify({ ...(config(origins) as object), pools }));
    const r = await ctl('reload');
    assert.equal(r.code, EXIT_OK, r.err);
    assert.equal(
      r.out,
      'reloaded: generation 3\n  nothing changed\n  overridden: web/o1: the file\'s weight 3 does not apply: weight 5 was set through the API (portico ctl reset web/o1 drops it)\n',
    );
    assert.deepEqual(await ctl('reset', 'web/o1'), { code: EXIT_OK, out: 'web/o1: runtime change dropped; weight 3, ready as the file says\n', err: '' });
    assert.match((await ctl('servers', 'web')).out, /\no1\s+\S+\s+ready\s+no check\s+3\s/);
    assert.match((await ctl('status')).out, /0 in force\n/);
    const again = await ctl('reset', 'web/o1');
    assert.equal(again.code, EXIT_REFUSED);
    assert.match(again.err, /server o1 of pool web has no runtime change: it runs as the file says \(LB_ADMIN_NOT_FOUND\)/);
    assert.equal((await ctl('add', 'web', 'extra', origins[2]!.address.replace(/:\d+$/, ':9'))).code, EXIT_OK);
    const apiOnly = await ctl('reset', 'web/extra');
    assert.equal(apiOnly.code, EXIT_REFUSED);
    assert.match(apiOnly.err, /server extra is not in the file \(it was registered through the API\): remove it with DELETE/);
    assert.equal((await ctl('remove', 'web/extra', '--now')).code, EXIT_OK);
  });

  it('usage errors exit 2, an unreachable API exits 3', async () => {
    assert.equal((await ctl()).code, EXIT_USAGE);
    assert.equal((await ctl('frobnicate')).code, EXIT_USAGE);
    assert.equal((await ctl('weight', 'web-o1', '3')).code, EXIT_USAGE);
    assert.equal((await ctl('weight', 'web/o1', 'x')).code, EXIT_USAGE);
    assert.equal((await ctl('pools', '--bogus')).code, EXIT_USAGE);
    const port = await freePort();
    let err = '';
    const code = await runCtl(['--admin', `127.0.0.1:${port}`, 'status'], { out: () => {}, err: (s) => (err += s), env: {} });
    assert.equal(code, EXIT_UNREACHABLE);
    assert.match(err, new RegExp(`cannot reach the admin API at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  });

  it('the command line: portico ctl with PORTICO_ADMIN and exit codes', async () => {
    const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'portico');
    const run = (args: string[], env: Record<string, string>): Promise<Run> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [bin, 'ctl', ...args], { env: { ...process.env, ...env } });
        let out = '';
        let err = '';
        child.stdout.on('data', (c) => (out += c));
        child.stderr.on('data', (c) => (err += c));
        child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
      });
    const ok = await run(['pools'], { PORTICO_ADMIN: admin });
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^POOL/);
    const refused = await run(['drain', 'web/o1'], { PORTICO_ADMIN: admin, PORTICO_ADMIN_TOKEN: 'wrong' });
    assert.equal(refused.code, 1);
    assert.match(refused.err, /LB_ADMIN_UNAUTHORIZED/);
  });

  it('-c FILE: the admin API and token of the configuration (admin.listen, admin.token); --admin still wins', async () => {
    const port = new URL(admin).port;
    const f = join(dir, 'ctl.yaml');
    writeFileSync(f, `admin: { listen: "127.0.0.1:${port}", token: T0k }\npools: [ { name: web } ]\n`);
    const run = async (...argv: string[]): Promise<Run> => {
      let out = '';
      let err = '';
      const code = await runCtl(argv, { out: (x) => (out += x), err: (x) => (err += x), env: {} });
      return { code, out, err };
    };
    const pools = await run('-c', f, 'pools');
    assert.equal(pools.code, EXIT_OK, pools.err);
    assert.match(pools.out, /^POOL/);
    // The token comes from the file too: a change is accepted.
    assert.equal((await run('-c', f, 'ready', 'web/o1')).code, EXIT_OK);
    const elsewhere = await freePort();
    const wins = await run('-c', f, '--admin', `127.0.0.1:${elsewhere}`, 'pools');
    assert.equal(wins.code, EXIT_UNREACHABLE);
    const bad = await run('-c', join(dir, 'missing.yaml'), 'pools');
    assert.equal(bad.code, EXIT_USAGE);
    assert.match(bad.err, /-c .*missing\.yaml:\n.*cannot read the configuration: no such file/);
  });

  it('the weight during slow start is rounded (0.13/1, not 0.13332236603333344/1)', () => {
    assert.equal(weightOf(0.13332236603333344, 1), '0.13/1');
    assert.equal(weightOf(2.5, 3), '2.5/3');
    assert.equal(weightOf(3, 3), '3');
  });

  it('table aligns columns and right-aligns numbers', () => {
    assert.equal(table(['A', 'N'], [['xx', 1], ['y', 100]]), 'A     N\nxx    1\ny   100\n');
  });
});
