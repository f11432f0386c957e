import type { Exchange } from '../exchange.js';
import type { HttpPhase } from '../phases.js';

/** `exposeServer`: X-Served-By names the server that answered. */
class ServedByPhase implements HttpPhase {
  readonly name = 'served-by';

  onResponseHead(ex: Exchange): string {
    return 'X-Served-By: ' + ex.picked!.name + '\r\n';
  }
}

export const SERVED_BY_PHASE: HttpPhase = new ServedByPhase();
