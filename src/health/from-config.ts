import type { Clock } from '../core/clock.js';
import type { Rng } from '../core/rng.js';
import type { HealthConfig, PassiveConfig } from '../config/types.js';
import type { HealthCheck } from './health-check.js';
import { HealthMonitor, type HealthTarget, type MonitorSchedule } from './health-monitor.js';
import { HttpHealthCheck } from './http-check.js';
import { IcmpHealthCheck } from './icmp-check.js';
import { OutlierDetector, type OutlierTarget } from './outlier.js';
import { TcpHealthCheck } from './tcp-check.js';

/** The probe of a pool's `health` section; undefined for `type: none`. */
export function healthCheckFor(h: HealthConfig): HealthCheck | undefined {
  const check = probeOf(h);
  if (check === undefined || (h.type !== 'http' && h.type !== 'tcp') || h.port === undefined) return check;
  const port = h.port;
  // Another port of the same host: the probe sees the server with that port.
  return { kind: check.kind, check: (server, signal) => check.check({ ...server, port }, signal) };
}

function probeOf(h: HealthConfig): HealthCheck | undefined {
  switch (h.type) {
    case 'none':
      return undefined;
    case 'tcp':
      return new TcpHealthCheck({ send: h.send, expect: h.expect });
    case 'http':
      return new HttpHealthCheck({
        method: h.method,
        path: h.path,
        host: h.host,
        status: h.expect.status,
        body: h.expect.body,
        bodyRegex: h.expect.bodyRegex,
      });
    case 'icmp':
      return new IcmpHealthCheck({ timeoutMs: h.timeout });
  }
}

export function scheduleFor(h: Exclude<HealthConfig, { type: 'none' }>): MonitorSchedule {
  return {
    intervalMs: h.interval,
    timeoutMs: h.timeout,
    rise: h.rise,
    fall: h.fall,
    jitterMs: h.jitter,
    fastIntervalMs: h.fastInterval ?? h.interval,
    downIntervalMs: h.downInterval ?? h.interval,
  };
}

/** Active checks of a pool, or undefined when it has none. */
export function createHealthMonitor(target: HealthTarget, h: HealthConfig, rng: Rng): HealthMonitor | undefined {
  const check = healthCheckFor(h);
  if (check === undefined || h.type === 'none') return undefined;
  return new HealthMonitor(target, check, scheduleFor(h), rng);
}

/** Passive checks of a pool; with active checks, an ejected server must also pass them to return. */
export function createOutlierDetector(
  target: OutlierTarget,
  p: PassiveConfig,
  clock: Clock,
  monitor: HealthMonitor | undefined,
): OutlierDetector {
  return new OutlierDetector(
    target,
    { consecutiveErrors: p.consecutiveErrors, ejectForMs: p.ejectFor, maxEjectForMs: p.maxEjectFor, maxEjectPercent: p.maxEjectPercent, errors: p.errors },
    { clock, onEject: monitor === undefined ? undefined : (id, detail) => monitor.forceDown(id, detail) },
  );
}
