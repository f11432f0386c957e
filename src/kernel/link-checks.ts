import type { PathIssue } from '../config/path.js';
import { asMap, asString, maps, type RawMap } from '../config/checks/raw.js';

/**
 * The link-layer forwarding modes of kernel listeners (SPEC §10): `dsr` and `distributed` work on
 * one interface (`kernel.interface`); `distributed` needs its nodes and cluster MAC, and this node
 * among the nodes; `dsr` rewrites only MAC addresses, so a server takes the virtual address's port.
 */
export function checkKernelLink(root: RawMap): PathIssue[] {
  const out: PathIssue[] = [];
  const node = asString(asMap(root['cluster'])?.['node']);
  const pools = new Map<string, [number, RawMap]>();
  for (const [i, p] of maps(root['pools'])) {
    const n = asString(p['name']);
    if (n !== undefined) pools.set(n, [i, p]);
  }
  for (const [i, l] of maps(root['listeners'])) {
    if (l['dataPlane'] !== 'kernel') continue;
    const fwd = asString(l['forwarding']);
    if (fwd !== 'dsr' && fwd !== 'distributed') continue;
    const kernel = asMap(l['kernel']);
    if (asString(kernel?.['interface']) === undefined) {
      out.push({ path: ['listeners', i, 'kernel', 'interface'], message: `forwarding: ${fwd} needs kernel.interface: the interface on the ${fwd === 'dsr' ? "servers'" : "nodes'"} segment` });
    }
    if (fwd === 'distributed') {
      const d = asMap(kernel?.['distributed']);
      if (d === undefined) {
        out.push({ path: ['listeners', i, 'kernel', 'distributed'], message: 'forwarding: distributed needs kernel.distributed: { nodes: [...], clusterMac: ... }' });
      } else if (node !== undefined && Array.isArray(d['nodes']) && !d['nodes'].includes(node)) {
        out.push({ path: ['listeners', i, 'kernel', 'distributed', 'nodes'], message: `this node (cluster.node: ${node}) is not one of the nodes; add it, or set cluster.node to its name here` });
      }
      continue;
    }
    const listen = asString(l['listen']);
    const port = listen === undefined ? undefined : listen.slice(listen.lastIndexOf(':') + 1);
    const pool = pools.get(asString(l['pool']) ?? '');
    if (port === undefined || pool === undefined) continue;
    for (const [j, s] of maps(pool[1]['servers'])) {
      const addr = asString(s['address']);
      const sp = addr?.slice(addr.lastIndexOf(':') + 1);
      if (sp !== undefined && sp !== port) {
        out.push({
          path: ['pools', pool[0], 'servers', j, 'address'],
          message: `kernel listener "${asString(l['name'])}" forwards by dsr, which rewrites MAC addresses only: a server must take the virtual address's port ${port}, not ${sp}`,
        });
      }
    }
  }
  return out;
}
