import { z } from 'zod';
import { envPort, parseEnv } from '@hearth/config';

/**
 * Settings only the database addons use, read from HEARTH_* variables once per process.
 * An admin URL set to the empty string means "no such server here": apps asking for
 * that addon are refused with a clear reason.
 */
export interface DatabaseSettings {
  mysqlAdminUrl: string | undefined;
  postgresqlAdminUrl: string | undefined;
  mongodbAdminUrl: string | undefined;
  redisServerBin: string;
  redisPortMin: number;
  redisPortMax: number;
  redisMaxmemory: string;
}

// MongoDB URLs may list several hosts ("h1:27017,h2:27017"), which WHATWG URLs reject: only the scheme is checked there.
const adminUrl = (scheme: RegExp, example: string, fallback?: string, wellFormed = URL.canParse) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined ? fallback : v === '' ? undefined : v))
    .refine((v) => v === undefined || (scheme.test(v) && wellFormed(v)), { message: `must be a URL such as ${example}` });

const envSchema = z
  .object({
    HEARTH_MYSQL_ADMIN_URL: adminUrl(/^mysql:\/\//, 'mysql://root:secret@127.0.0.1:3306', 'mysql://root@127.0.0.1:3306'),
    HEARTH_POSTGRESQL_ADMIN_URL: adminUrl(/^postgres(ql)?:\/\//, 'postgres://postgres:secret@127.0.0.1:5432/postgres', 'postgres://postgres@127.0.0.1:5432/postgres'),
    HEARTH_MONGODB_ADMIN_URL: adminUrl(/^mongodb:\/\/([^@/\s]+@)?[^@/\s]+(\/[^\s]*)?$/, 'mongodb://admin:secret@127.0.0.1:27017/admin', undefined, () => true),
    HEARTH_REDIS_SERVER_BIN: z.string().min(1).default('redis-server'),
    HEARTH_REDIS_PORT_MIN: envPort.default(6380),
    HEARTH_REDIS_PORT_MAX: envPort.default(6479),
    HEARTH_REDIS_MAXMEMORY: z
      .string()
      .regex(/^[1-9][0-9]*(kb|mb|gb)?$/i, 'must be a size such as 256mb')
      .default('256mb'),
  })
  .refine((e) => e.HEARTH_REDIS_PORT_MIN <= e.HEARTH_REDIS_PORT_MAX, { message: 'must not be above HEARTH_REDIS_PORT_MAX', path: ['HEARTH_REDIS_PORT_MIN'] });

export function parseDatabaseSettings(env: NodeJS.ProcessEnv): DatabaseSettings {
  const e = parseEnv(envSchema, env);
  return {
    mysqlAdminUrl: e.HEARTH_MYSQL_ADMIN_URL,
    postgresqlAdminUrl: e.HEARTH_POSTGRESQL_ADMIN_URL,
    mongodbAdminUrl: e.HEARTH_MONGODB_ADMIN_URL,
    redisServerBin: e.HEARTH_REDIS_SERVER_BIN,
    redisPortMin: e.HEARTH_REDIS_PORT_MIN,
    redisPortMax: e.HEARTH_REDIS_PORT_MAX,
    redisMaxmemory: e.HEARTH_REDIS_MAXMEMORY.toLowerCase(),
  };
}

let cached: DatabaseSettings | undefined;

/** The process's settings, validated on first use (only processes that touch a database addon pay for it). */
export function databaseSettings(): DatabaseSettings {
  return (cached ??= parseDatabaseSettings(process.env));
}
