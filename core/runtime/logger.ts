/** Plain line logger: `<time> <level> [<component>] message key=value ...` on stderr. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

type Level = 'info' | 'warn' | 'error';

export function createLogger(component = 'cdc', write: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const log = (level: Level) => (message: string, fields?: Record<string, unknown>) => {
    const extra = fields ? Object.entries(fields).map(([k, v]) => ` ${k}=${formatField(v)}`).join('') : '';
    write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${component}] ${message}${extra}`);
  };
  return {
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (name) => createLogger(`${component}/${name}`, write),
  };
}

function formatField(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}
