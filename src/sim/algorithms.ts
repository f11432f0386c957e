import type { BalancerFactory } from '../balancer/balancer.js';
import { balancerNames, getBalancer } from '../balancer/index.js';
import { isObject } from '../core/guards.js';

/** An algorithm as the simulator runs it: a registered factory and options parsed by that factory. */
export interface AlgorithmSpec {
  /** The name given on the command line. */
  readonly label: string;
  readonly factory: BalancerFactory<any>;
  readonly options: unknown;
  /** The configuration equivalent, for reports: `balance: NAME` plus options. */
  readonly config: string;
}

export interface AlgorithmParams {
  /** LARD's T_low and T_high. */
  readonly low: number;
  readonly high: number;
  /** c of bounded-load hashing. */
  readonly bound: number;
  /** Maglev table size for the maglev-based names; the algorithm's default when undefined. */
  readonly table?: number | undefined;
}

/**
 * Names the simulator accepts beyond the registry's own (`roundrobin`, `leastconn`, `least-traffic`,
 * `fastest`, `p2c`, `random`, `hash`, `lard`), each mapped to a registered algorithm and its options.
 * The simulator's requests carry their URL path as the hash key, so every `hash*` hashes the URL.
 */
const ALIASES: Readonly<Record<string, (p: AlgorithmParams) => [string, unknown]>> = {
  wrr: () => ['roundrobin', undefined],
  hash: () => ['hash', { key: 'uri', method: 'maglev' }],
  'hash-uri': () => ['hash', { key: 'uri', method: 'maglev' }],
  lb: () => ['hash', { key: 'uri', method: 'maglev' }],
  'hash-maglev': () => ['hash', { key: 'uri', method: 'maglev' }],
  'hash-ring': () => ['hash', { key: 'uri', method: 'ring' }],
  'hash-jump': () => ['hash', { key: 'uri', method: 'jump' }],
  'hash-bounded': (p) => ['hash', { key: 'uri', method: 'maglev', boundedLoad: p.bound }],
  'hash-ring-bounded': (p) => ['hash', { key: 'uri', method: 'ring', boundedLoad: p.bound }],
  lard: (p) => ['lard', { low: p.low, high: p.high }],
  'lard-r': (p) => ['lard', { low: p.low, high: p.high, replicate: true }],
};

export function algorithmNames(): string[] {
  return [...new Set([...balancerNames(), ...Object.keys(ALIASES)])];
}

export function resolveAlgorithm(label: string, params: AlgorithmParams): AlgorithmSpec {
  const alias = ALIASES[label];
  const [name, aliasRaw] = alias !== undefined ? alias(params) : [label, undefined];
  let raw = aliasRaw;
  if (params.table !== undefined && isObject(raw) && raw['method'] === 'maglev') raw = { ...raw, tableSize: params.table };
  const factory = getBalancer(name);
  if (factory === undefined) throw new Error(`unknown algorithm ${JSON.stringify(label)} (known: ${algorithmNames().join(', ')})`);
  const options = factory.parseOptions(raw);
  const config = raw === undefined ? `balance: ${name}` : `balance: ${name} ${JSON.stringify(raw)}`;
  return { label, factory, options, config };
}


/** A comma-separated list of names. */
export function resolveAlgorithms(list: string, params: AlgorithmParams): AlgorithmSpec[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new Error('--balance needs at least one algorithm');
  return names.map((n) => resolveAlgorithm(n, params));
}
