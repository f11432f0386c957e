/**
 * Portico as a library: the same configuration as the file, as a typed object.
 *
 *   import { createPortico } from 'portico';
 *   const lb = createPortico({ listeners: [...], pools: [...] });
 *   await lb.start();
 */
export { createPortico, type Portico, type PorticoDeps } from './app/app.js';
export { validateConfig, loadConfigFile, parseConfigText } from './config/load.js';
export { ConfigError } from './config/errors.js';
export type * from './config/types.js';
export type { Balancer, BalancerFactory, BalancerDeps, PickContext, ReleaseOutcome, ActiveCounts } from './balancer/balancer.js';
export { registerBalancer, getBalancer, balancerNames } from './balancer/registry.js';
/** Throw it from a BalancerFactory's parseOptions: `path` names the option (under the pool key named after the algorithm). */
export { BalancerOptionsError } from './balancer/options.js';
export type { Server, ServerId, AdminState, OpState } from './core/server.js';
export { ServerSet } from './core/server-set.js';
export type { Clock } from './core/clock.js';
export type { Rng } from './core/rng.js';
export { LbError } from './core/errors.js';
export { Outcome, OUTCOME_CODES, httpStatus, retryAllowed, type OutcomeCode, type OutcomeSpec } from './core/outcome.js';
export { Pool } from './pool/pool.js';
