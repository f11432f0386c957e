/**
 * The kernel listener kinds: `dataPlane: kernel` with `protocol: tcp` or `udp` (SPEC §10).
 * Registered in src/app/listener-kinds.ts by one line (`...kernelKinds`); keyed `kernel/tcp` and
 * `kernel/udp` (kindKey). The forwarding modes plug into src/kernel/render.ts (`modes`).
 */
import { checkKernelPools, kernelTcpListenerSchema, kernelUdpListenerSchema } from './schema.js';
import { checkKernelLink } from './link-checks.js';
import type { RawMap } from '../config/checks/raw.js';
import type { KernelListenerConfig } from '../config/types.js';
import type { BuildContext, ListenerKind } from '../listener/kind.js';
import { CollectedMetric } from '../observability/metrics.js';
import type { TcpShared } from '../proxy/tcp/build.js';
import { KernelListener } from './listener.js';

/** What a kernel listener builds from: the pools, and their configurations (kept by the tcp kinds' shared state). */
export type KernelBuildContext = BuildContext & { readonly l4: TcpShared; readonly node: string };

function poolOf(lc: KernelListenerConfig, ctx: KernelBuildContext) {
  const h = ctx.handles.get(lc.pool);
  // The configuration's reference check makes this unreachable from a file.
  if (h === undefined) throw new Error(`kernel listener ${lc.name}: pool ${lc.pool} is not defined`);
  let pc;
  try {
    pc = ctx.l4.config(lc.pool);
  } catch {
    pc = undefined;
  }
  return { pool: h.pool, pc };
}

/** Every kernel listener running in this process (metrics and the dashboard read them all). */
const running = new Set<KernelListener>();

/** `first`: the kind that carries what both share once (the pool checks, the metrics). */
function kernelKind<P extends 'tcp' | 'udp'>(protocol: P, schema: typeof kernelTcpListenerSchema | typeof kernelUdpListenerSchema, first: boolean) {
  type C = Extract<KernelListenerConfig, { protocol: P }>;
  const kind: ListenerKind<C, KernelListener, KernelBuildContext> = {
    protocol: protocol as C['protocol'],
    dataPlane: 'kernel',
    schema,
    transports: [protocol],
    ...(first ? { checks: (root: RawMap) => [...checkKernelPools(root), ...checkKernelLink(root)] } : {}),
    build(lc, ctx) {
      const { pool, pc } = poolOf(lc, ctx);
      const l = new KernelListener(lc, pool, pc, ctx.log, { store: ctx.store, sharedStore: ctx.sharedStore, node: ctx.node });
      const start = l.start.bind(l);
      const stop = l.stop.bind(l);
      l.start = async () => {
        await start();
        running.add(l);
      };
      l.stop = async (grace) => {
        running.delete(l);
        await stop(grace);
      };
      return l;
    },
    update(l, lc, ctx) {
      const { pool, pc } = poolOf(lc, ctx);
      l.update(lc, pool, pc);
      return true;
    },
    // The virtual address is not a socket: a changed `listen` is a new rule, written by update.
    rebind: () => false,
    adminViews: {
      /** `GET /api/v1/listeners/{listener}/flows`: conntrack's flows to the virtual address and the persistence entries. */
      flows: (l) => l.flows(),
      /** `GET /api/v1/listeners/{listener}/kernel`: per-server packet and byte counters (the dashboard's rates). */
      kernel: (l) => ({ listener: l.name, protocol: l.protocol, pool: l.poolName, forwarding: l.spec().forwarding, servers: l.traffic, ...l.linkView() }),
    },
  };
  if (first) kind.metrics = () => kernelMetrics();
  return kind;
}

/** `portico_kernel_packets_total` and `portico_kernel_bytes_total` {listener, server, direction} from the named counters (read every tick). */
function kernelMetrics(): CollectedMetric[] {
  const rows = function* (field: 'packets' | 'bytes') {
    for (const l of running) {
      for (const t of l.traffic) {
        yield { labels: { listener: l.name, server: t.server, direction: 'in' }, value: field === 'packets' ? t.packetsIn : t.bytesIn };
        yield { labels: { listener: l.name, server: t.server, direction: 'out' }, value: field === 'packets' ? t.packetsOut : t.bytesOut };
      }
    }
  };
  return [
    // Under cluster.workers every worker reads the same kernel counters: the group's value is the
    // freshest reading (the largest), not their sum.
    new CollectedMetric('portico_kernel_packets_total', 'Packets forwarded by the kernel data plane, by listener, server and direction (in: toward the server, out: its replies)', 'counter', () => rows('packets'), 'max'),
    new CollectedMetric('portico_kernel_bytes_total', 'Bytes forwarded by the kernel data plane, by listener, server and direction (in: toward the server, out: its replies)', 'counter', () => rows('bytes'), 'max'),
  ];
}

export const kernelTcpKind = kernelKind('tcp', kernelTcpListenerSchema, true);
export const kernelUdpKind = kernelKind('udp', kernelUdpListenerSchema, false);
export const kernelKinds = [kernelTcpKind, kernelUdpKind] as const;
