export * from './addon.ts';
export * from './apps.ts';
export { parseManifest, ManifestError } from './manifest.ts';
export { ADDONS, findAddon } from './registry.ts';
export { appDataDir, appDockerCertsDir } from '@hearth/runtime';
export { USERS_BASE_DN, GROUPS_BASE_DN } from './addons/ldap.ts';
export { instanceOf, redisDir, runningPid, stopRedisInstance, superviseRedisInstances, withRedis } from './databases/redis-instances.ts';
export { databaseSettings } from './databases/settings.ts';
export { databaseName } from './databases/names.ts';
