import { createHmac } from 'node:crypto';
import type { Server, ServerId } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';

/** Characters of a token: 22 base64url characters (132 bits of HMAC-SHA256). */
export const TOKEN_LENGTH = 22;

/**
 * Opaque server tokens for cookies: HMAC-SHA256(secret, server id), never the server's
 * address. A token is computed once per server; the token → server map is rebuilt once
 * per ServerSet (the first lookup after a change), so a lookup is one Map read.
 */
export class ServerTokens {
  private secret: Buffer | undefined;
  private readonly byId = new Map<ServerId, string>();
  private set: ServerSet | undefined = undefined;
  private byToken = new Map<string, Server>();

  constructor(secret?: string | Buffer) {
    if (secret !== undefined) this.setSecret(secret);
  }

  get hasSecret(): boolean {
    return this.secret !== undefined;
  }

  /** Set (or replace) the key; every token changes with it. */
  setSecret(secret: string | Buffer): void {
    this.secret = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    this.byId.clear();
    this.set = undefined;
  }

  tokenOf(id: ServerId): string {
    let t = this.byId.get(id);
    if (t === undefined) {
      if (this.secret === undefined) throw new Error('persistence: the cookie secret is not loaded');
      t = createHmac('sha256', this.secret).update(id).digest('base64url').slice(0, TOKEN_LENGTH);
      if (this.byId.size > 100_000) this.byId.clear();
      this.byId.set(id, t);
    }
    return t;
  }

  /** The server of `set` whose token is `token`, whatever its state; undefined when none. */
  serverFor(token: string, set: ServerSet): Server | undefined {
    if (token.length !== TOKEN_LENGTH) return undefined;
    if (set !== this.set) {
      const m = new Map<string, Server>();
      for (const s of set.all) m.set(this.tokenOf(s.id), s);
      this.byToken = m;
      this.set = set;
    }
    return this.byToken.get(token);
  }
}
