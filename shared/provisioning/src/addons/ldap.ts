import { z } from 'zod';
import { generateSecret } from '@hearth/directory';
import type { Addon } from '../addon.ts';

export const USERS_BASE_DN = 'ou=users,dc=cloudron';
export const GROUPS_BASE_DN = 'ou=groups,dc=cloudron';

export const ldap: Addon = {
  name: 'ldap',
  optionsSchema: z.object({}).strict(),
  installOnly: true,
  async provision(ctx, existing) {
    return existing ?? { bindDn: `cn=${ctx.app.id},ou=apps,dc=cloudron`, bindPassword: generateSecret() };
  },
  async rotate(_ctx, existing) {
    return { ...existing, bindPassword: generateSecret() };
  },
  env({ config }, c) {
    const host = config.hostname;
    return [
      ['CLOUDRON_LDAP_SERVER', host],
      ['CLOUDRON_LDAP_HOST', host],
      ['CLOUDRON_LDAP_PORT', String(config.ports.ldap)],
      ['CLOUDRON_LDAP_URL', `ldap://${host}:${config.ports.ldap}`],
      ['CLOUDRON_LDAP_USERS_BASE_DN', USERS_BASE_DN],
      ['CLOUDRON_LDAP_GROUPS_BASE_DN', GROUPS_BASE_DN],
      ['CLOUDRON_LDAP_BIND_DN', c.bindDn!],
      ['CLOUDRON_LDAP_BIND_PASSWORD', c.bindPassword!],
    ];
  },
};
