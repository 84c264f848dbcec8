import type { Addon } from './addon.ts';
import { docker } from './addons/docker.ts';
import { email } from './addons/email.ts';
import { ldap } from './addons/ldap.ts';
import { localstorage } from './addons/localstorage.ts';
import { mongodbAddon } from './addons/mongodb.ts';
import { mysqlAddon } from './addons/mysql.ts';
import { postgresqlAddon } from './addons/postgresql.ts';
import { oidc } from './addons/oidc.ts';
import { proxyAuth } from './addons/proxyauth.ts';
import { recvmail } from './addons/recvmail.ts';
import { redisAddon } from './addons/redis.ts';
import { scheduler } from './addons/scheduler.ts';
import { sendmail } from './addons/sendmail.ts';
import { tls } from './addons/tls.ts';
import { turn } from './addons/turn.ts';

/** Addons `hearth app install` can provision, in the order their variables are printed. */
export const ADDONS: Addon[] = [ldap, sendmail, recvmail, email, oidc, turn, proxyAuth, mysqlAddon, postgresqlAddon, redisAddon, mongodbAddon, localstorage, scheduler, tls, docker];

export function findAddon(name: string): Addon | undefined {
  return ADDONS.find((a) => a.name === name);
}
