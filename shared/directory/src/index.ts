export * from './types.ts';
export * from './store.ts';
export * from './directory.ts';
export * from './validate.ts';
export { PasswordHasher, generateSecret, secretEquals } from './password.ts';
export { totpCode, verifyTotp, generateTotpSecret, otpauthUri } from './totp.ts';
export { LoginThrottle, DEFAULT_THROTTLE, throttleAccount, type LoginAttempt, type ThrottleLimits } from './throttle.ts';
export { connectRedis, RedisCounters, StoreCounters, type SharedCounters } from './shared-state.ts';
// The stores (SqliteStore, PostgresStore) are not exported: Directory.open loads the one configured, so a
// process never loads the other's driver.
export { MIGRATIONS, LATEST_SCHEMA_VERSION, FIRST_UID_NUMBER, FIRST_GID_NUMBER } from './migrations.ts';
export { parseSshPublicKey, SSH_KEY_ALGORITHMS } from './ssh-keys.ts';
export * from './import.ts';
