/**
 * Buffers a socket reads into again and again (Node's `onread`), kept across connections: a
 * connection takes one when it opens and gives it back when it closes, so that reads allocate
 * nothing and opening many connections allocates few buffers. A buffer that a pending write may
 * still reference is never given back (the caller's rule): it is left to the collector.
 */

/** Spare buffers, any size; a size asked for that none has is allocated. */
const spare: Buffer[] = [];
/** At most this many spare buffers are kept. */
const SPARE_MAX = 256;

/** A buffer of `size` bytes: a spare one, or a new one outside Node's shared pool. */
export function takeReadBuffer(size: number): Buffer {
  while (spare.length > 0) {
    const b = spare.pop()!;
    // A reload may have changed the size: a buffer of another size is left to the collector.
    if (b.length === size) return b;
  }
  return Buffer.allocUnsafeSlow(size);
}

/** Give back a buffer nothing references any more. */
export function giveReadBuffer(b: Buffer): void {
  if (spare.length < SPARE_MAX) spare.push(b);
}
