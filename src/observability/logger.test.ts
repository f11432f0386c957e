import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { poolEventLine } from '../pool/event-log.js';
import { createLogger, setLogFormat, setProcessTag } from './logger.js';

const lines = (): { out: string[]; write: (l: string) => void } => {
  const out: string[] = [];
  return { out, write: (l) => out.push(l.replace(/^\S+ /, 'T ')) };
};

test('a field without a value is left out (no detail=undefined); a worker names itself in every line', () => {
  const l = lines();
  const log = createLogger('info', l.write);
  log.info('server web/a op up -> down', { cause: 'probe', detail: undefined });
  setProcessTag('worker 2');
  try {
    log.warn('x', { n: 1 });
  } finally {
    setProcessTag('');
  }
  log.info('y');
  assert.deepEqual(l.out, ['T info  server web/a op up -> down cause=probe', 'T warn  worker 2: x n=1', 'T info  y']);
});

test('log.format json: one object a line with time, level, process, msg and the fields; a field cannot replace those', () => {
  const out: string[] = [];
  const log = createLogger('info', (l) => out.push(l));
  setLogFormat('json');
  setProcessTag('worker 2');
  try {
    log.warn('server web/a op up -> down', { cause: 'probe', detail: undefined, msg: 'not this', n: 3 });
    log.debug('not written');
  } finally {
    setProcessTag('');
    setLogFormat('text');
  }
  log.info('y');
  assert.equal(out.length, 2);
  const o = JSON.parse(out[0]!) as Record<string, unknown>;
  assert.match(String(o['time']), /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual({ ...o, time: 'T' }, { time: 'T', level: 'warn', process: 'worker 2', msg: 'server web/a op up -> down', cause: 'probe', n: 3 });
  assert.deepEqual(Object.keys(o), ['time', 'level', 'process', 'msg', 'cause', 'n']);
  assert.match(out[1]!, /^\S+ info  y$/);
});

test('pool events: a server going down is a warning; added and removed say their state without a double space', () => {
  const base = { pool: 'web', server: 'a', cause: 'probe' };
  assert.deepEqual(poolEventLine({ ...base, kind: 'op', from: 'up', to: 'down', detail: '3 probes failed' }), {
    level: 'warn',
    msg: 'server web/a op up -> down',
    fields: { cause: 'probe', detail: '3 probes failed' },
  });
  assert.deepEqual(poolEventLine({ ...base, kind: 'op', from: 'down', to: 'up' }), { level: 'info', msg: 'server web/a op down -> up', fields: { cause: 'probe' } });
  assert.equal(poolEventLine({ ...base, cause: 'admin', kind: 'added', from: '', to: 'ready' }).msg, 'server web/a added (ready)');
  assert.equal(poolEventLine({ ...base, cause: 'admin', kind: 'removed', from: 'drain', to: '' }).msg, 'server web/a removed (was drain)');
});
