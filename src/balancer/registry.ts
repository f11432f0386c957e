import type { BalancerFactory } from './balancer.js';

const factories = new Map<string, BalancerFactory<any>>();

/** Make an algorithm selectable by name in configuration (`balance: NAME`). */
export function registerBalancer(factory: BalancerFactory<any>): void {
  if (!/^[a-z][a-z0-9-]*$/.test(factory.name)) throw new Error(`balancer name must be kebab-case: ${factory.name}`);
  factories.set(factory.name, factory);
}

export function getBalancer(name: string): BalancerFactory<any> | undefined {
  return factories.get(name);
}

export function balancerNames(): string[] {
  return [...factories.keys()];
}
