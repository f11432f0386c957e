/** A small leveled logger; background loops and lifecycle events use it, the hot path does not. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

/** A logger whose level can be changed while it runs (a reload's `log.level`). */
export interface LevelLogger extends Logger {
  setLevel(level: LogLevel): void;
}

export function isLevelLogger(l: Logger): l is LevelLogger {
  return typeof (l as Partial<LevelLogger>).setLevel === 'function';
}

/** Put before every line of this process (a worker of cluster.workers: `worker 2: `). */
let processTag = '';
/** The same, as the `process` member of a JSON line ('' for none). */
let processName = '';

/** Name this process in every log line from now on (`worker 2`); every logger of the process takes it. */
export function setProcessTag(tag: string): void {
  processTag = tag === '' ? '' : `${tag}: `;
  processName = tag;
}

/** How the process log writes a line: `text` (time, level, message, key=value) or `json` (one object a line). */
export type LogFormat = 'text' | 'json';
let format: LogFormat = 'text';

/** `log.format`: every logger of the process writes this format from now on (at start and on each reload). */
export function setLogFormat(f: LogFormat): void {
  format = f;
}

/**
 * One JSON line: `time`, `level`, `process` (a worker: `worker 2`), `msg`, then the fields
 * (a field of one of those names, or without a value, is left out).
 */
function jsonLine(lvl: LogLevel, msg: string, fields: Record<string, unknown> | undefined): string {
  const o: Record<string, unknown> = { time: new Date().toISOString(), level: lvl };
  if (processName !== '') o['process'] = processName;
  o['msg'] = msg;
  if (fields !== undefined) for (const [k, v] of Object.entries(fields)) if (v !== undefined && !(k in o)) o[k] = v;
  return JSON.stringify(o);
}

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l + '\n')): LevelLogger {
  let max = ORDER[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[lvl] > max) return;
    if (format === 'json') return write(jsonLine(lvl, msg, fields));
    let line = `${new Date().toISOString()} ${lvl.padEnd(5)} ${processTag}${msg}`;
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
    }
    write(line);
  };
  return {
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
    setLevel: (l) => {
      max = ORDER[l];
    },
  };
}

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
