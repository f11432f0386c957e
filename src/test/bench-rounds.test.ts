import { strict as assert } from 'node:assert';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';

/** bench/rounds.mjs: the per-round ratios `npm run bench` prints after the peers' summary. */
interface Row {
  scenario: string;
  ours: string;
  peer: string;
  ratios: number[];
  min: number;
  median: number;
}
interface Rounds {
  parseRuns(text: string): Record<string, string>[];
  roundRatios(rows: Record<string, string>[]): { rounds: string[]; rows: Row[] };
  render(t: { rounds: string[]; rows: Row[] }, aa: boolean): string;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const load = async (): Promise<Rounds> => (await import(pathToFileURL(join(root, 'bench', 'rounds.mjs')).href)) as Rounds;

const HEAD = 'round,scenario,peer,layer,port,requests,duration_s,rps,proxy_ticks,clk_tck';
/** requests / (ticks / 100) is the figure: 1000 requests in 100 ticks = 1000 per CPU-second. */
const csv = [
  HEAD,
  '1,ka,direct,direct,9101,5000,8,625,n/a,100',
  '1,ka,node-net,l4,9303,1000,8,125,100,100',
  '1,ka,portico-tcp,l4,9304,1500,8,187,100,100',
  '2,ka,portico-tcp,l4,9304,900,8,112,100,100',
  '2,ka,node-net,l4,9303,1000,8,125,50,100',
  '3,ka,node-net,l4,9303,1000,8,125,100,100',
  '3,ka,portico-tcp,l4,9304,1000,8,125,100,100',
].join('\n');

describe('bench/rounds.mjs', () => {
  it('divides our requests per CPU-second by the peer’s, round by round', async () => {
    const r = await load();
    const t = r.roundRatios(r.parseRuns(csv));
    assert.deepEqual(t.rounds, ['1', '2', '3']);
    assert.equal(t.rows.length, 1, 'only the pair both of whose sides ran');
    const row = t.rows[0]!;
    assert.equal(row.ours, 'portico-tcp');
    assert.equal(row.peer, 'node-net');
    // round 2: 900 / 1 s against 1000 / 0.5 s
    assert.deepEqual(row.ratios.map((x) => Number(x.toFixed(3))), [1.5, 0.45, 1]);
    assert.equal(row.min, 0.45);
    assert.equal(row.median, 1);
  });

  it('leaves a round out of the lowest and the median where one side is missing', async () => {
    const r = await load();
    const t = r.roundRatios(r.parseRuns(csv.split('\n').filter((l) => !l.startsWith('3,ka,node-net')).join('\n')));
    const row = t.rows[0]!;
    assert.ok(Number.isNaN(row.ratios[2]));
    assert.equal(row.min, 0.45);
    assert.equal(row.median, (1.5 + 0.45) / 2);
    assert.match(r.render(t, false), /\| ka \| portico-tcp \/ node-net \| 1\.50 \| 0\.45 \| - \| 0\.45 \| 0\.97 \|/);
  });

  it('says when the run was an A/A run', async () => {
    const r = await load();
    const t = r.roundRatios(r.parseRuns(csv));
    assert.match(r.render(t, true), /^A\/A: /);
    assert.doesNotMatch(r.render(t, false), /A\/A/);
  });
});
