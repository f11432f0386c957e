/**
 * A listener's access list: which client addresses may connect. Built once from the
 * configuration (`access: { allow, deny }`) and checked once per connection, at accept.
 */
import { CidrSet } from '../core/cidr.js';

export class AccessList {
  private readonly allow: CidrSet;
  private readonly deny: CidrSet;

  constructor(allow: readonly string[], deny: readonly string[]) {
    this.allow = new CidrSet(allow);
    this.deny = new CidrSet(deny);
  }

  /**
   * The list for a configuration, or undefined when it admits every address (both families
   * allowed, nothing denied): such a listener checks nothing at all.
   */
  static of(cfg: { readonly allow: readonly string[]; readonly deny: readonly string[] }): AccessList | undefined {
    // IPv4 addresses are matched as IPv4-mapped IPv6, so ::/0 covers both families.
    if (cfg.deny.length === 0 && cfg.allow.includes('::/0')) return undefined;
    return new AccessList(cfg.allow, cfg.deny);
  }

  /** The address is allowed and not denied. An address that does not parse is refused. */
  admits(address: string): boolean {
    return this.allow.has(address) && !this.deny.has(address);
  }
}
