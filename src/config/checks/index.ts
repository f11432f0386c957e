import type { PathIssue } from '../path.js';
import { listenerConfigKinds } from '../schema/listener.js';
import { checkAdminExposure } from './admin.js';
import { checkCacheReferences } from './cache.js';
import { checkListenConflicts } from './listen-conflicts.js';
import { checkPoolOptions } from './pools.js';
import { asMap } from './raw.js';
import { checkPoolReferences } from './references.js';
import { checkRoutePriority, checkUnreachableRoutes } from './routes.js';
import { checkUniqueNames } from './unique-names.js';

/** Checks that span several keys, run on the raw input next to the schema; then each listener kind's own (src/config/schema/listener.ts). */
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
    ...listenerConfigKinds().flatMap((k) => k.checks?.(root) ?? []),
    ...checkCacheReferences(root),
  ];
}
