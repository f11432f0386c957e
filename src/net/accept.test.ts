import { strict as assert } from 'node:assert';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { AccessList } from './access.js';
import { admit, drain, listen, type AcceptObserver } from './accept.js';

class Counts implements AcceptObserver {
  readonly seen: string[] = [];
  connection(listener: string): void {
    this.seen.push(`${listener}:ok`);
  }
  rejected(listener: string, reason: string): void {
    this.seen.push(`${listener}:${reason}`);
  }
}

/** Opens a connection and resolves once the server closed it, or after `ms` with it still open. */
function closedWithin(port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.on('error', () => {});
    const timer = setTimeout(() => {
      c.destroy();
      resolve(false);
    }, ms);
    c.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

test('admit: max 0 is no limit; at max the connection is refused; the access list checks the peer unless acceptProxy', async () => {
  const obs = new Counts();
  const live = new Set<Socket>();
  let max = 0;
  let access: AccessList | undefined;
  let acceptProxy = false;
  const server = createServer((sock) => {
    if (!admit(sock, 'l', obs, live.size, max, access, acceptProxy)) return;
    live.add(sock);
    sock.on('close', () => live.delete(sock));
  });
  const port = await listen(server, '127.0.0.1', 0);
  assert.ok(port > 0);
  try {
    assert.equal(await closedWithin(port, 150), false);
    assert.equal(await closedWithin(port, 150), false);
    max = 1;
    await waitEmpty(live);
    const held = connect({ host: '127.0.0.1', port });
    await waitSize(live, 1);
    assert.equal(await closedWithin(port, 1000), true);
    held.destroy();
    await waitEmpty(live);
    max = 0;
    access = AccessList.of({ allow: ['10.0.0.0/8'], deny: [] });
    assert.equal(await closedWithin(port, 1000), true);
    acceptProxy = true;
    assert.equal(await closedWithin(port, 150), false);
    assert.deepEqual(obs.seen, ['l:ok', 'l:ok', 'l:ok', 'l:max-connections', 'l:access', 'l:ok']);
  } finally {
    for (const s of live) s.destroy();
    await drain(server, live, 0, (s) => s.destroy());
  }
});

test('listen rejects when the port is taken; drain waits for connections, then cuts what is left', async () => {
  const live = new Set<Socket>();
  const server = createServer((sock) => {
    live.add(sock);
    sock.on('close', () => live.delete(sock));
  });
  const port = await listen(server, '127.0.0.1', 0);
  await assert.rejects(listen(createServer(), '127.0.0.1', port), /EADDRINUSE/);
  const c = connect({ host: '127.0.0.1', port });
  c.on('error', () => {});
  await waitSize(live, 1);
  const t0 = Date.now();
  let ticks = 0;
  await drain(server, live, 200, (s) => s.destroy(), () => ticks++);
  const took = Date.now() - t0;
  assert.ok(took >= 190 && took < 2000, `drained in ${took} ms`);
  assert.ok(ticks > 0);
  await waitEmpty(live);
  c.destroy();
});

async function waitSize(set: Set<unknown>, n: number): Promise<void> {
  for (let i = 0; i < 200 && set.size !== n; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(set.size, n);
}

function waitEmpty(set: Set<unknown>): Promise<void> {
  return waitSize(set, 0);
}
