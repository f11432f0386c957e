import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { createPortico } from '../../app/app.js';
import { selfSigned } from '../../test-helpers/certs.js';
import { startOrigin, startOrigins, waitFor } from '../../test-helpers/origins.js';

const CHROMIUM = '/usr/bin/chromium';
const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test-output');

/** Skip with a reason when chromium is missing; under CI=true a missing browser is a failure. */
function missing(): string | false {
  if (existsSync(CHROMIUM)) return false;
  const why = `${CHROMIUM} is not installed (Debian package chromium)`;
  if (process.env.CI === 'true') throw new Error(`${why}: required under CI`);
  return why;
}

function get(port: number, path: string, agent: Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

describe('the dashboard in a real browser (headless chromium)', () => {
  const skip = missing();
  it('shows the servers live, drains one with a click, shows a server going down, and saves a screenshot', { skip, timeout: 60_000 }, async () => {
    const { chromium } = await import('playwright-core');
    const origins = await startOrigins(3);
    const token = 'dashboard-test-token';
    const state = mkdtempSync(join(tmpdir(), 'portico-state-'));
    const p = createPortico({
      log: { level: 'error' },
      stateDir: state,
      admin: { listen: '127.0.0.1:0', token },
      // The origins' answers carry no freshness: every request goes through to a server, counted by the cache.
      caches: [{ name: 'main', memory: '1MiB', maxObjectSize: '64KiB' }],
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web', cache: 'main' }] }],
      pools: [
        {
          name: 'web',
          health: { type: 'http', path: '/', interval: '200ms', timeout: '1s', rise: 1, fall: 2 },
          slowStart: '60s',
          servers: origins.map((o, i) => ({ name: o.name, address: o.address, weight: i + 1, maxConnections: 50 })),
        },
      ],
    });
    await p.start();
    const port = p.address('web')!.port;
    const adminUrl = p.admin!.url;
    const profile = mkdtempSync(join(tmpdir(), 'portico-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1600, height: 1400 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    // Traffic while the page is open (bounded: stops with the test, at most 20 000 requests).
    let running = true;
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const load = (async () => {
      for (let i = 0; running && i < 20_000; i++) {
        await get(port, `/page/${i % 7}`, agent);
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        // (the refused token and the refused reload are answered 401 and 422 on purpose)
        if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (401|422)/.test(m.text())) errors.push(m.text());
      });
      await page.goto(adminUrl + '/');
      await page.waitForSelector('#live.pill-live', { timeout: 10_000 });
      await page.waitForSelector('tr[data-server="web/o3"]', { timeout: 10_000 });
      assert.equal(await page.locator('article.pool[data-pool="web"] table.servers tbody tr').count(), 3);
      await waitFor(async () => (await page.locator('tr[data-server="web/o1"] td.law-n').textContent()) !== '0.000', 10_000, 'traffic to show');
      // The operational laws: a service time per server, the parallelism (maxConnections 50), where the pool saturates.
      await page.locator('article.pool[data-pool="web"] .laws-summary', { hasText: /^this pool saturates near [\d,]+ req\/s; o\d is the bottleneck · D = / }).waitFor({ timeout: 15_000 });
      assert.match((await page.locator('tr[data-server="web/o1"] td.law-s').textContent()) ?? '', /ms$/);
      assert.equal((await page.locator('tr[data-server="web/o1"] td.law-c').textContent())?.trim(), '50.00');
      assert.equal(await page.locator('article.pool[data-pool="web"] td.law-d.bottleneck').count(), 1);
      // The cache's row: its requests counted, none answered from it.
      await waitFor(async () => Number(await page.locator('#caches tr[data-cache="main"] td:nth-child(6)').textContent()) > 0, 10_000, 'the cache row');
      assert.equal(await page.locator('#caches').isVisible(), true);
      assert.equal((await page.locator('#caches tr[data-cache="main"] td:nth-child(5)').textContent())?.trim(), '0.0%');
      assert.equal((await page.locator('tr[data-server="web/o1"] .admin').textContent())?.trim(), 'ready');
      assert.equal((await page.locator('tr[data-server="web/o1"] .op').textContent())?.trim(), 'up');

      // Drain o2 with a click: the page asks for the token once, then calls the API.
      await page.click('tr[data-server="web/o2"] button.act-drain');
      await page.waitForSelector('#token-dialog[open]', { timeout: 5000 });
      // A wrong token is refused by the API and asked for again, with the API's message.
      await page.fill('#token-input', 'not-the-token');
      await page.click('#token-ok');
      await page.locator('#token-error', { hasText: /not the admin token/ }).waitFor({ timeout: 5000 });
      assert.equal(p.pools.get('web')!.byName('o2')!.admin, 'ready');
      await page.fill('#token-input', token);
      await page.click('#token-ok');
      await page.locator('tr[data-server="web/o2"] .admin', { hasText: /^drain$/ }).waitFor({ timeout: 10_000 });
      assert.equal(p.pools.get('web')!.byName('o2')!.admin, 'drain');
      assert.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('portico.adminToken')), token);

      // A second change needs no second prompt: set o1's weight.
      await page.fill('tr[data-server="web/o1"] .actions input', '5');
      await page.click('tr[data-server="web/o1"] button.act-weight');
      await waitFor(() => p.pools.get('web')!.byName('o1')!.server.weight === 5, 10_000, 'the weight change');
      assert.equal(await page.locator('#token-dialog[open]').count(), 0);

      // Reload: this Portico was built from an object, not a file; the API's refusal is shown.
      await page.click('#reload');
      const notice = page.locator('#notice.bad', { hasText: /POST \/api\/v1\/reload failed: LB_/ });
      await notice.waitFor({ timeout: 5000 });

      // Stop o3's server: the health check takes it down and the page shows it.
      await origins[2]!.close();
      await page.locator('tr[data-server="web/o3"] .op', { hasText: /^down$/ }).waitFor({ timeout: 15_000 });
      await page.waitForSelector('#timeline li.ev-down', { timeout: 5000 });
      const timeline = await page.locator('#timeline').textContent();
      assert.match(timeline ?? '', /web\/o3/);
      assert.match(timeline ?? '', /web\/o2drain/);

      // o3's server comes back: the health check brings it up, and slow start ramps its weight.
      const o3port = origins[2]!.port;
      origins[2] = await startOrigin('o3', undefined, o3port);
      await page.locator('tr[data-server="web/o3"] .op', { hasText: /^up$/ }).waitFor({ timeout: 15_000 });
      await page.locator('tr[data-server="web/o3"] .ramp').waitFor({ timeout: 5000 });
      const eff = Number(await page.locator('tr[data-server="web/o3"] .w-eff').textContent());
      assert.ok(eff > 0 && eff < 3, `o3 effective weight ${eff} of 3`);

      // Charts drew something; wait for one more frame so the screenshot shows the last state.
      await page.waitForTimeout(1200);
      assert.ok((await page.locator('#chart-latency canvas').count()) >= 1);
      assert.ok((await page.locator('#chart-hist canvas').count()) >= 1);
      mkdirSync(OUT, { recursive: true });
      const shot = join(OUT, 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok(statSync(shot).size > 10_000);
      assert.deepEqual(errors, [], 'no script error on the page');
    } finally {
      running = false;
      await load;
      agent.destroy();
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });

  it('with admin.protectReads over HTTPS: the page asks for the token before it shows anything, then runs live', { skip, timeout: 60_000 }, async () => {
    const { chromium } = await import('playwright-core');
    const origins = await startOrigins(2);
    const token = 'read-protect-token';
    const state = mkdtempSync(join(tmpdir(), 'portico-state-'));
    const cert = selfSigned(['localhost', '127.0.0.1']);
    const p = createPortico({
      log: { level: 'error' },
      stateDir: state,
      admin: { listen: '127.0.0.1:0', token, protectReads: true, tls: { cert: cert.certFile, key: cert.keyFile } },
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: origins.map((o) => ({ name: o.name, address: o.address })) }],
    });
    await p.start();
    const adminUrl = p.admin!.url;
    assert.match(adminUrl, /^https:/);
    const profile = mkdtempSync(join(tmpdir(), 'portico-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      // The test certificate is self-signed; the browser is told to accept it.
      ignoreHTTPSErrors: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        // (the reads without the token and with a wrong one are answered 401 on purpose)
        if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 401/.test(m.text())) errors.push(m.text());
      });
      await page.goto(adminUrl + '/');
      // Nothing of the node without the token: the page asks for it.
      await page.waitForSelector('#token-dialog[open]', { timeout: 10_000 });
      await page.locator('#token-error', { hasText: /needs the admin token/ }).waitFor({ timeout: 5000 });
      assert.equal(await page.locator('tr[data-server]').count(), 0);
      // A wrong token: asked again, with the API's message.
      await page.fill('#token-input', 'wrong');
      await page.click('#token-ok');
      await page.locator('#token-error', { hasText: /not the admin token/ }).waitFor({ timeout: 5000 });
      await page.fill('#token-input', token);
      await page.click('#token-ok');
      await page.waitForSelector('#live.pill-live', { timeout: 10_000 });
      await page.waitForSelector('tr[data-server="web/o2"]', { timeout: 10_000 });
      assert.match((await page.locator('#node').textContent()) ?? '', /^node /);
      // A change takes the same token, without a second prompt.
      await page.click('tr[data-server="web/o2"] button.act-drain');
      await page.locator('tr[data-server="web/o2"] .admin', { hasText: /^drain$/ }).waitFor({ timeout: 10_000 });
      assert.equal(p.pools.get('web')!.byName('o2')!.admin, 'drain');
      assert.equal(await page.locator('#token-dialog[open]').count(), 0);
      assert.deepEqual(errors, [], 'no script error on the page');
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });

  it('creates a load balancer with the form (its problems listed when refused) and deletes it', { skip, timeout: 60_000 }, async () => {
    const { chromium } = await import('playwright-core');
    const origins = await startOrigins(2);
    const token = 'lb-form-token';
    const state = mkdtempSync(join(tmpdir(), 'portico-state-'));
    const p = createPortico({
      log: { level: 'error' },
      stateDir: state,
      admin: { listen: '127.0.0.1:0', token },
      loadBalancers: { listen: '127.0.0.1', zone: 'lb.portico.test' },
      listeners: [
        { name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] },
        { name: 'dns', protocol: 'dns', listen: '127.0.0.1:0', zones: [{ name: 'lb.portico.test' }] },
      ],
      pools: [{ name: 'web', servers: [{ name: origins[0]!.name, address: origins[0]!.address }] }],
    });
    await p.start();
    const profile = mkdtempSync(join(tmpdir(), 'portico-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        // (the refused load balancer is answered 422 on purpose)
        if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 422/.test(m.text())) errors.push(m.text());
      });
      page.on('dialog', (d) => void d.accept());
      await page.goto(p.admin!.url + '/');
      await page.waitForSelector('#live.pill-live', { timeout: 10_000 });
      await page.locator('#loadbalancers tbody', { hasText: 'none yet' }).waitFor({ timeout: 10_000 });
      // Refused: a server port out of range and a health target that is not one; both listed, nothing made.
      await page.fill('#lb-form input[name=name]', 'shop');
      await page.fill('#lb-form input[name=port]', '0');
      await page.fill('#lb-form input[name=serverPort]', '70000');
      await page.fill('#lb-form input[name=target]', 'PING:x');
      // (the form's own bounds are lifted: the API's answer is what is tested)
      await page.locator('#lb-form input[name=serverPort]').evaluate((el) => (el as unknown as { removeAttribute(n: string): void }).removeAttribute('max'));
      await page.click('#lb-create');
      await page.waitForSelector('#token-dialog[open]', { timeout: 5000 });
      await page.fill('#token-input', token);
      await page.click('#token-ok');
      await page.locator('#lb-issues li', { hasText: /listeners\[0\]\.serverPort: expected a port 1-65535/ }).waitFor({ timeout: 10_000 });
      await page.locator('#lb-issues li', { hasText: /health\.target: expected HTTP:PORT\/PATH or TCP:PORT/ }).waitFor({ timeout: 5000 });
      assert.equal(p.address('shop'), undefined);
      // Accepted: the row shows its address and DNS name; traffic flows to the server given.
      await page.fill('#lb-form input[name=serverPort]', String(origins[1]!.port));
      await page.fill('#lb-form input[name=servers]', '127.0.0.1');
      await page.fill('#lb-form input[name=target]', '');
      await page.click('#lb-create');
      await page.locator('tr[data-lb="shop"] .lb-dns', { hasText: 'shop.lb.portico.test' }).waitFor({ timeout: 10_000 });
      const port = p.address('shop')!.port;
      assert.equal((await page.locator('tr[data-lb="shop"] .lb-address').textContent())?.trim(), `127.0.0.1:${port}`);
      assert.equal(await get(port, '/', new Agent()), 200);
      await page.click('tr[data-lb="shop"] button.act-delete-lb');
      await page.locator('#loadbalancers tbody', { hasText: 'none yet' }).waitFor({ timeout: 10_000 });
      assert.equal(p.address('shop'), undefined);
      assert.deepEqual(errors, [], 'no script error on the page');
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });
});
