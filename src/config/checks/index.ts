import type { PathIssue } from '../path.js';
import { checkAdminExposure } from './admin.js';
import { checkCacheReferences } from './cache.js';
import { checkListenConflicts } from './listen-conflicts.js';
import { checkKernelPools } from './kernel.js';
import { checkKernelLink } from './kernel-link.js';
import { checkL4Pools } from './l4.js';
import { checkPoolOptions } from './pools.js';
import { asMap } from './raw.js';
import { checkPoolReferences } from './references.js';
import { checkRoutePriority, checkUnreachableRoutes } from './routes.js';
import { checkUniqueNames } from './unique-names.js';

/** Checks that span several keys, run on the raw input next to the schema. */
export function crossCheck(raw: unknown): PathIssue[] {
  const root = asMap(raw);
  if (root === undefined) return [];
  return [
    ...checkUniqueNames(root),
    ...checkPoolReferences(root),
    ...checkListenConflicts(root),
    ...checkUnreachableRoutes(root),
    ...checkRoutePriority(root),
    ...checkPoolOptions(root),
    ...checkAdminExposure(root),
    ...checkL4Pools(root),
    ...checkKernelPools(root),
    ...checkKernelLink(root),
    ...checkCacheReferences(root),
  ];
}
