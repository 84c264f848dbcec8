import { z } from 'zod';

/** The rules CONTRACT.md fixes for names and passwords, in one place. */

export const RESERVED_USERNAMES = new Set(['admin', 'admins', 'users', 'no-reply', 'postmaster', 'mailer-daemon']);
export const MIN_PASSWORD_LENGTH = 8;

export const usernameSchema = z
  .string()
  .regex(/^[a-z0-9.-]{1,64}$/, 'username must be 1–64 characters of lowercase a-z, 0-9, "." and "-"')
  .refine((u) => !RESERVED_USERNAMES.has(u), { message: 'that username is reserved' });

export const emailSchema = z
  .string()
  .max(254)
  .regex(/^[^\s@<>()",;:]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/i, 'not a valid email address')
  .transform((e) => e.toLowerCase());

export const passwordSchema = z
  .string()
  .min(MIN_PASSWORD_LENGTH, `password must be at least ${MIN_PASSWORD_LENGTH} characters`)
  .max(1024, 'password is too long');

/** An argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), accepted as is from an import. */
export const argon2idHashSchema = z.string().regex(/^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/, 'not an argon2id hash ($argon2id$v=19$m=…,t=…,p=…$salt$hash)');

export const groupNameSchema = z.string().regex(/^[a-z0-9._-]{1,64}$/i, 'group name must be 1–64 characters of a-z, 0-9, ".", "_" and "-"');

export const domainSchema = z
  .string()
  .max(253)
  .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/i, 'not a valid domain name (FQDN)')
  .transform((d) => d.toLowerCase());

/** Parses with a zod schema and throws the first issue as one line. */
export function check<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ValidationError(r.error.issues[0]!.message);
  return r.data;
}

export class ValidationError extends Error {}
