import pino from 'pino';
import { redactText } from '../../config/redact';

/**
 * The service's logger (pino underneath). Two formats of the same records:
 *  - json:   one JSON object per line: time, level, component, msg, then the fields
 *            (errors as { type, message, stack, code, cause }); what log shippers read;
 *  - pretty: `<time> <LEVEL> [<component>] message key=value ...`, for people.
 * Callers only see this interface, so the format is chosen once, where the logger is made.
 */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

export const logFormats = ['json', 'pretty'] as const;
export const logLevels = ['info', 'warn', 'error'] as const;
export type LogFormat = (typeof logFormats)[number];
export type LogLevel = (typeof logLevels)[number];

export interface LoggerOptions {
  /** Default: $CDC_LOG_FORMAT, else pretty when stderr is a terminal, json otherwise. */
  format?: LogFormat;
  /** Records below this level are dropped. Default: $CDC_LOG_LEVEL, else info. */
  level?: LogLevel;
  /** Where each finished line goes (without its newline). Default: stderr, written synchronously. */
  write?: (line: string) => void;
}

/**
 * `createLogger(component, write)` (a line sink, as tests pass) prints pretty lines;
 * `createLogger(component, options)` chooses format, level and output.
 */
export function createLogger(component = 'cdc', output?: ((line: string) => void) | LoggerOptions): Logger {
  const options: LoggerOptions = typeof output === 'function' ? { write: output, format: 'pretty' } : (output ?? {});
  const format = options.format ?? envChoice('CDC_LOG_FORMAT', logFormats) ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const level = options.level ?? envChoice('CDC_LOG_LEVEL', logLevels) ?? 'info';
  const write = options.write ?? ((line: string) => void process.stderr.write(line + '\n'));
  // Every line, either format, loses URL passwords and known secrets before it leaves.
  const destination = { write: (chunk: string) => write(redactText(format === 'json' ? chunk.trimEnd() : prettyLine(JSON.parse(chunk)))) };
  const root = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return wrap(root, component);
}

function wrap(root: pino.Logger, component: string): Logger {
  const log = root.child({ component });
  const emit = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (fields) log[level](serializeFields(fields), message);
    else log[level](message);
  };
  return { info: emit('info'), warn: emit('warn'), error: emit('error'), child: (name) => wrap(root, `${component}/${name}`) };
}

function envChoice<T extends string>(name: string, choices: readonly T[]): T | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new Error(`${name}=${value} is not one of ${choices.join(', ')}`);
}

/** Errors anywhere in the top-level fields keep their stack and cause chain. */
function serializeFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = value instanceof Error ? serializeError(value) : value;
  return out;
}

interface SerializedError {
  type: string;
  message: string;
  stack?: string;
  code?: unknown;
  cause?: unknown;
}

function serializeError(error: Error, depth = 0): SerializedError {
  const out: SerializedError = { type: error.name, message: error.message, stack: error.stack };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined) out.cause = cause instanceof Error && depth < 5 ? serializeError(cause, depth + 1) : String(cause);
  return out;
}

const RECORD_KEYS = new Set(['time', 'level', 'pid', 'component', 'msg']);

function prettyLine(record: Record<string, unknown>): string {
  const extra = Object.entries(record)
    .filter(([key]) => !RECORD_KEYS.has(key))
    .map(([key, value]) => ` ${key}=${formatField(value)}`)
    .join('');
  return `${record.time} ${String(record.level).toUpperCase().padEnd(5)} [${record.component}] ${record.msg ?? ''}${extra}`;
}

function isSerializedError(value: unknown): value is SerializedError {
  return typeof value === 'object' && value !== null && typeof (value as SerializedError).message === 'string' && 'stack' in value && 'type' in value;
}

function formatField(value: unknown): string {
  if (isSerializedError(value)) return JSON.stringify(value.message);
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}
