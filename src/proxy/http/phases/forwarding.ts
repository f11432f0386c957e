import { FORWARDING, forwardedNode, forwardedValue, xffAddress } from '../headers.js';
import type { Exchange } from '../exchange.js';
import type { HttpPhase } from '../phases.js';

/**
 * X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded (RFC 7239) toward the server.
 * The session never relays a client's own forwarding headers; from a trusted proxy
 * (`trustedProxies`) this phase keeps them, this hop appended (X-Forwarded-For, Forwarded) or the
 * first value kept (X-Forwarded-Proto, X-Forwarded-Host).
 */
class ForwardingPhase implements HttpPhase {
  readonly name = 'forwarding';

  upstreamHead(ex: Exchange): string {
    let xff: string | undefined;
    let xfProto: string | undefined;
    let xfHost: string | undefined;
    let fwd: string | undefined;
    if (ex.clientTrusted) {
      const lnames = ex.lnames;
      const values = ex.values;
      for (let i = 0; i < lnames.length; i++) {
        const ln = lnames[i]!;
        if (!FORWARDING.has(ln)) continue;
        const v = values[i]!;
        if (ln === 'x-forwarded-for') xff = xff === undefined ? v : xff + ', ' + v;
        else if (ln === 'x-forwarded-proto') xfProto ??= v;
        else if (ln === 'x-forwarded-host') xfHost ??= v;
        else fwd = fwd === undefined ? v : fwd + ', ' + v;
      }
    }
    const proto = ex.scheme;
    const client = xffAddress(ex.clientAddress);
    const hostHdr = ex.head?.host ?? '';
    let h = 'X-Forwarded-For: ' + (xff === undefined ? client : xff + ', ' + client) + '\r\n';
    h += 'X-Forwarded-Proto: ' + (xfProto ?? proto) + '\r\n';
    if (hostHdr !== '') h += 'X-Forwarded-Host: ' + (xfHost ?? hostHdr) + '\r\n';
    const mine = 'for=' + forwardedNode(ex.clientAddress) + ';proto=' + proto + (hostHdr !== '' ? ';host=' + forwardedValue(hostHdr) : '');
    return h + 'Forwarded: ' + (fwd === undefined ? mine : fwd + ', ' + mine) + '\r\n';
  }
}

/** One instance serves every route (it keeps no state). */
export const FORWARDING_PHASE: HttpPhase = new ForwardingPhase();
