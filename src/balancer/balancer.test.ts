import { test } from 'node:test';
import { balancerNames, getBalancer } from './index.js';
import { conformanceCases, SUITE_OPTIONS } from './balancer.suite.js';

const expected = ['roundrobin', 'leastconn', 'least-traffic', 'fastest', 'p2c', 'random', 'hash', 'lard'];

test('every algorithm of SPEC §3 is registered', () => {
  for (const name of expected) if (getBalancer(name) === undefined) throw new Error(`${name} is not registered`);
});

for (const name of balancerNames()) {
  const factory = getBalancer(name)!;
  const variants = SUITE_OPTIONS[name] ?? [undefined];
  for (const raw of variants) {
    const label = raw === undefined ? name : `${name} ${JSON.stringify(raw)}`;
    for (const c of conformanceCases(factory, raw)) test(`${label}: ${c.name}`, () => c.run());
  }
}
