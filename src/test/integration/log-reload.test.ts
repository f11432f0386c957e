/**
 * `log` applied by a reload (SIGHUP to a real `portico start`): the access log turned on, moved
 * after a rotation (the same file name opened again), refused when its file cannot be opened
 * (the old log goes on), turned off; and the process log's level changed in place.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { send } from '../../test-helpers/http.js';
import { startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'portico');

const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);

describe('log settings applied by a reload', () => {
  let origin: Origin;
  let dir: string;
  let child: ChildProcess | undefined;
  let out = '';

  before(async () => {
    origin = await startOrigin('o1');
    dir = mkdtempSync(join(tmpdir(), 'portico-log-'));
  });
  after(async () => {
    if (child !== undefined && child.exitCode === null) {
      const gone = new Promise((r) => child!.once('close', r));
      child.kill('SIGTERM');
      await gone;
    }
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('access log on, reopened after rotation, a bad file refused, off; log level changed in place', { timeout: 180_000 }, async (t) => {
    try {
      await steps();
    } catch (err) {
      // What Portico said is the first thing to read when a step fails.
      t.diagnostic(`portico's output:\n${out.slice(-6000)}`);
      throw err;
    }
  });

  async function steps(): Promise<void> {
    const file = join(dir, 'portico.json');
    const accessLog = join(dir, 'access.log');
    const write = (log: unknown): void =>
      writeFileSync(
        file,
        JSON.stringify({
          log,
          admin: { listen: '127.0.0.1:0' },
          stateDir: join(dir, 'state'),
          listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
          pools: [{ name: 'web', health: { type: 'none' }, servers: [{ name: 'o1', address: origin.address }] }],
        }),
      );
    write({ level: 'info', access: false });
    child = spawn(process.execPath, [bin, 'start', '-c', file], { cwd: dir });
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    await waitFor(() => /listener web on/.test(out) && /admin API on/.test(out), 90_000, 'portico to start');
    // One worker per core by default: every worker must run before the first SIGHUP, or a late one
    // reads the file of a later step as it starts and logs its reloads in the middle of the others.
    const workers = Number(/primary \d+: (\d+) workers/.exec(out)?.[1] ?? 1);
    const count = (re: RegExp): number => (out.match(re) ?? []).length;
    await waitFor(() => count(/listener web on/g) >= workers, 90_000, `${workers} workers to listen`);
    const port = Number(/listener web on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const admin = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    const generation = async (): Promise<number> => ((await (await fetch(`${admin}/api/v1/status`)).json()) as { config: { generation: number } }).config.generation;
    const requests = async (n: number, tag: string): Promise<void> => {
      for (let i = 0; i < n; i++) assert.equal((await send(port, `/${tag}/${i}`)).status, 200);
    };
    const g0 = await generation();
    // The admin API answers from one worker; at level info every worker's line is awaited too.
    const reload = async (n: number, infoLines = true): Promise<void> => {
      const want = g0 + n;
      child!.kill('SIGHUP');
      await waitFor(async () => (await generation()) === want && (!infoLines || count(new RegExp(`reload: generation ${want}\\b`, 'g')) >= workers), 15_000, `generation ${want}`).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${out}`);
      });
    };

    await requests(3, 'off');
    assert.equal(existsSync(accessLog), false);

    // On.
    write({ level: 'info', access: { path: accessLog, format: 'json' } });
    await reload(1);
    await requests(5, 'on');
    await waitFor(() => lines(accessLog).length === 5, 15_000, 'five lines');
    assert.ok(lines(accessLog).every((l) => (JSON.parse(l) as { target: string }).target.startsWith('/on/')));

    // Rotated away: the same settings, and a reload opens a new file of that name.
    renameSync(accessLog, `${accessLog}.1`);
    await reload(2);
    await requests(3, 'rotated');
    await waitFor(() => lines(accessLog).length === 3, 15_000, 'three lines in the new file');
    assert.equal(lines(`${accessLog}.1`).length, 5, 'the rotated file keeps its lines');

    // A file that cannot be opened: the reload is refused, the log in force goes on.
    write({ level: 'info', access: { path: join(dir, 'no-such-dir', 'access.log'), format: 'json' } });
    child.kill('SIGHUP');
    await waitFor(() => count(/reload refused/g) >= workers, 15_000, 'the reload to be refused by every worker');
    assert.equal(await generation(), g0 + 2);
    await requests(2, 'still');
    await waitFor(() => lines(accessLog).length === 5, 15_000, 'two more lines in the same file');

    // Off, and the level raised to warn: the info lines of the next reload are not written.
    write({ level: 'warn', access: false });
    await reload(3, false);
    await requests(4, 'off-again');
    const mark = out.length;
    write({ level: 'warn', access: false });
    await reload(4, false);
    assert.doesNotMatch(out.slice(mark), /info/, 'no info line at level warn');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(lines(accessLog).length, 5, 'nothing written once off');

    // Back to info: the reload says so.
    write({ level: 'info', access: false });
    await reload(5);
    await waitFor(() => new RegExp(`reload: generation ${g0 + 5}`).test(out), 15_000, 'the info line of the last reload');

    const metrics = await (await fetch(`${admin}/metrics`)).text();
    const written = /portico_access_log_lines_total\{outcome="written"\} (\d+)/.exec(metrics);
    assert.ok(written !== null, 'the access-log counter stays after the log is off');
    assert.equal(Number(written[1]), 10, 'lines written by every access log since the start');
  }
});
