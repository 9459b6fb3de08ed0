import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Options of `createLogger` (and the gateway's `logger` option). */
export interface LoggerOptions {
  /** Lowest level logged. Default: `LOG_LEVEL`, else "info". */
  level?: LevelWithSilent;
  /** Human-readable output (pino-pretty). Default: when stdout is a TTY. */
  pretty?: boolean;
  /** Logger name in every line. Default "gen-gateway". */
  name?: string;
}

/** Structured JSON logs (pino); pretty-printed when a person is watching a terminal. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  const base = { level, name: options.name ?? 'gen-gateway' };
  if (!pretty) return pino(base);
  return pino(
    base,
    pino.transport({
      target: 'pino-pretty',
      options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' },
    }),
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
