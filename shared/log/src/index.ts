import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * pino JSON logs; pretty-printed when stdout is a terminal. Password-bearing
 * fields are redacted wherever they appear, so a careless log call cannot leak one.
 */
export function createLogger(service: string, level = process.env.HEARTH_LOG_LEVEL ?? 'info'): Logger {
  const pretty = process.stdout.isTTY && process.env.HEARTH_LOG_FORMAT !== 'json';
  return pino({
    name: service,
    level,
    redact: {
      paths: ['password', '*.password', 'secret', '*.secret', 'passwordHash', '*.passwordHash', 'credentials'],
      censor: '[redacted]',
    },
    transport: pretty ? { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } : undefined,
  });
}
