import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { freePort, startOrigin, waitFor } from '../../test-helpers/origins.js';

/**
 * Installing outside the checkout, as a user does: `npm pack`, then `npm install -g` of the
 * tarball into a temporary prefix (its dependencies come from the npm registry), then the
 * installed `portico` checks a configuration and runs it: a request answered, then SIGTERM.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Run {
  readonly code: number | null;
  readonly out: string;
}

/** A command to its end (killed after `ms`: nothing hangs). */
function run(cmd: string, args: string[], cwd: string, ms: number, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/** The registry cannot be reached (as opposed to an install that fails). */
const offline = (out: string): boolean => /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|ECONNRESET|network/i.test(out);

test('npm pack, npm install -g --prefix TMP, then TMP/bin/portico check and start serve from outside the checkout', { timeout: 900_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-install-'));
  const prefix = join(dir, 'prefix');
  const origin = await startOrigin('installed');
  let child: ReturnType<typeof spawn> | undefined;
  try {
    // The checkout's dist/ is built (npm test builds first): no prepare script here.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], root, 300_000);
    assert.equal(pack.code, 0, pack.out);
    const tgz = readdirSync(dir).find((f) => /^portico-.*\.tgz$/.test(f));
    assert.ok(tgz !== undefined, pack.out);
    const install = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', join(dir, tgz)], dir, 600_000);
    if (install.code !== 0 && offline(install.out) && process.env['CI'] === undefined) {
      t.skip(`the npm registry cannot be reached from here: ${install.out.split('\n').find((l) => offline(l)) ?? ''}`);
      return;
    }
    assert.equal(install.code, 0, install.out);
    const bin = join(prefix, 'bin', 'portico');
    assert.ok(existsSync(bin), `${bin} installed`);
    const installed = join(prefix, 'lib', 'node_modules', 'portico');
    assert.equal(existsSync(join(installed, 'dist', 'test')), false, 'no compiled test installed');
    assert.ok(existsSync(join(installed, 'docs', 'production.md')) && existsSync(join(installed, 'contrib', 'portico.service')));

    // From a directory that is not the checkout, with the installed command only.
    const work = join(dir, 'work');
    const port = await freePort();
    const adminPort = await freePort();
    const env = { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env['PATH'] ?? ''}` };
    mkdirSync(work);
    writeFileSync(
      join(work, 'portico.yaml'),
      [
        `stateDir: ${join(work, 'state')}`,
        'admin:',
        `  listen: 127.0.0.1:${adminPort}`,
        'cluster: { workers: 1 }',
        'listeners:',
        '  - name: web',
        '    protocol: http',
        `    listen: 127.0.0.1:${port}`,
        '    routes: [ { pool: app } ]',
        'pools:',
        '  - name: app',
        `    servers: [ { name: a, address: ${origin.address} } ]`,
        '',
      ].join('\n'),
    );
    const check = await run('portico', ['check'], work, 120_000, env);
    assert.equal(check.code, 0, check.out);
    assert.match(check.out, /portico\.yaml: ok/);
    const version = await run('portico', ['--version'], work, 120_000, env);
    assert.match(version.out, /^portico \d+\.\d+\.\d+/);

    child = spawn(bin, ['start'], { cwd: work, env });
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    const proc = child;
    await waitFor(() => /listener web on/.test(out) || proc.exitCode !== null, 120_000, 'the installed portico to listen');
    assert.equal(proc.exitCode, null, out);
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (b += c));
        res.on('end', () => resolve(`${res.statusCode} ${b}`));
      });
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
      req.end();
    });
    assert.equal(body, '200 installed');
    const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
    proc.kill('SIGTERM');
    assert.equal(await exited, 0, out);
  } finally {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
