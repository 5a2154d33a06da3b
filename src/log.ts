// Structured JSON-line logger. One line per event on stdout; fields are flat so that
// `jq 'select(.msg=="ready")'` and log shippers work without a schema.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export type LogFields = Record<string, unknown>

export interface Logger {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  child(fields: LogFields): Logger
}

let minLevel: number = order[(process.env.RINGMQ_LOG_LEVEL as LogLevel) ?? 'info'] ?? order.info

export function setLogLevel(level: LogLevel): void {
  minLevel = order[level]
}

export function createLogger(base: LogFields, sink: (line: string) => void = writeStdout): Logger {
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (order[level] < minLevel) return
    const rec: LogFields = { time: new Date().toISOString(), level, ...base, msg, ...fields }
    if (fields?.err instanceof Error) rec.err = { message: fields.err.message, code: (fields.err as NodeJS.ErrnoException).code }
    sink(JSON.stringify(rec) + '\n')
  }
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger({ ...base, ...f }, sink),
  }
}

// A closed stdout (a parent or pager that went away) must not crash a broker that serves clients.
let stdoutGuarded = false
function writeStdout(line: string): void {
  if (!stdoutGuarded) {
    stdoutGuarded = true
    process.stdout.on('error', () => {})
  }
  process.stdout.write(line)
}
