import { strict as assert } from 'node:assert';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';

/** bench/pair-summary.mjs: the per-round figures `npm run bench:pair` prints. */
interface Round {
  round: string;
  first: string;
  a: number;
  b: number;
  ratio: number;
  errors: number;
}
interface Summary {
  scenario: string;
  a: string;
  b: string;
  rounds: Round[];
  median: number;
  min: number;
  max: number;
  unusable: string[];
}
interface PairSummary {
  parsePairs(text: string): Record<string, string>[];
  usPerRequest(row: Record<string, string>, side: 'a' | 'b'): number;
  summarize(rows: Record<string, string>[]): Summary[];
  render(s: Summary[]): string;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const load = async (): Promise<PairSummary> => (await import(pathToFileURL(join(root, 'bench', 'pair-summary.mjs')).href)) as PairSummary;

const HEAD = 'round,scenario,a,b,first,a_requests,a_cpu_ns,b_requests,b_cpu_ns,a_errors,b_errors';
/** 1000 requests in 40,000,000 ns of CPU is 40 µs a request. */
const csv = [
  HEAD,
  '1,ka,node-net,portico-tcp,A,1000,40000000,1000,32000000,0,0',
  '1,close,node-net,portico-tcp,A,500,100000000,400,84000000,0,0',
  '2,ka,node-net,portico-tcp,B,2000,80000000,1000,50000000,0,0',
  '2,close,node-net,portico-tcp,B,500,100000000,500,100000000,0,3',
  '3,ka,node-net,portico-tcp,A,1000,40000000,1000,40000000,0,0',
  '3,close,node-net,portico-tcp,A,0,100000000,500,90000000,0,0',
].join('\n');

describe('bench/pair-summary.mjs', () => {
  it('divides A’s CPU per request by B’s, round by round', async () => {
    const p = await load();
    const [ka, close] = p.summarize(p.parsePairs(csv));
    assert.equal(ka!.scenario, 'ka');
    assert.equal(ka!.a, 'node-net');
    assert.equal(ka!.b, 'portico-tcp');
    assert.deepEqual(ka!.rounds.map((r) => [r.a, r.b]), [[40, 32], [40, 50], [40, 40]]);
    assert.deepEqual(ka!.rounds.map((r) => r.ratio), [1.25, 0.8, 1]);
    assert.deepEqual(ka!.rounds.map((r) => r.first), ['A', 'B', 'A']);
    assert.equal(ka!.median, 1);
    assert.equal(ka!.min, 0.8);
    assert.equal(ka!.max, 1.25);
    assert.match(p.render([ka!]), /B at or above A in every round: no/);
    // round 1: 200 µs against 210; the round with errors and the one without requests give none
    assert.equal(close!.rounds[0]!.ratio, 200 / 210);
    assert.deepEqual(close!.unusable, ['2', '3']);
    assert.equal(close!.median, 200 / 210);
  });

  it('says yes only when every round has a figure at or above 1', async () => {
    const p = await load();
    const rows = p.parsePairs(csv).filter((r) => r.scenario === 'ka' && r.round !== '2');
    const text = p.render(p.summarize(rows));
    assert.match(text, /A \/ B: median 1\.125, lowest 1\.000, highest 1\.250; B at or above A in every round: yes/);
    assert.match(text, /\| 1 \| A \| 40\.00 \| 32\.00 \| 1\.250 \|/);
    const withError = p.parsePairs(csv).filter((r) => r.scenario === 'close' && r.round !== '3');
    const t2 = p.render(p.summarize(withError));
    assert.match(t2, /\| 2 \| B \| 200\.00 \| 200\.00 \| n\/a \(3 errors\) \|/);
    assert.match(t2, /every round: no \(rounds without a figure: 2\)/);
  });

  it('has no figure for a side without requests or CPU time', async () => {
    const p = await load();
    assert.ok(Number.isNaN(p.usPerRequest({ a_requests: '0', a_cpu_ns: '5' }, 'a')));
    assert.ok(Number.isNaN(p.usPerRequest({ b_requests: '10', b_cpu_ns: '' }, 'b')));
    assert.equal(p.usPerRequest({ b_requests: '10', b_cpu_ns: '5000' }, 'b'), 0.5);
  });
});
