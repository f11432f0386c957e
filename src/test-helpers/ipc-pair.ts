import type { IpcPort } from '../cluster/ipc.js';

/**
 * Two ends of a channel that behaves like a worker's IPC channel with `serialization: 'advanced'`:
 * messages are structured clones, delivered later (setImmediate), in order. After `cut()` (the
 * worker died) a send throws, nothing more is delivered, and both ends are told once.
 */
export function ipcPair(): { primary: IpcPort; worker: IpcPort; cut(): void } {
  const inbox = { primary: new Set<(m: unknown) => void>(), worker: new Set<(m: unknown) => void>() };
  const closers = new Set<() => void>();
  let open = true;
  const end = (mine: Set<(m: unknown) => void>, theirs: Set<(m: unknown) => void>): IpcPort => ({
    send(msg) {
      if (!open) throw new Error('channel closed');
      const copy = structuredClone(msg);
      setImmediate(() => {
        if (open) for (const fn of theirs) fn(copy);
      });
    },
    onMessage(fn) {
      mine.add(fn);
      return () => void mine.delete(fn);
    },
    onClose(fn) {
      closers.add(fn);
      return () => void closers.delete(fn);
    },
  });
  return {
    primary: end(inbox.primary, inbox.worker),
    worker: end(inbox.worker, inbox.primary),
    cut() {
      if (!open) return;
      open = false;
      for (const fn of [...closers]) fn();
    },
  };
}
