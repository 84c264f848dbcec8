import { createLogger } from '@hearth/log';
import { Directory, generateSecret, type App, type ThrottleLimits, type User } from '@hearth/directory';
import { runCommand, testEnv, type TestEnv } from '@hearth/testkit';
import { loadTls, type TlsMaterial } from '@hearth/tls';
import { startLdap, type LdapServer } from '../src/server.ts';

/**
 * A directory with a few users, a group and an app that may be used by alice and the
 * "staff" group (carol, dave), plus an LDAP server on free ports. bob is not allowed;
 * erin is allowed through staff but disabled.
 */
export interface Fixture {
  env: TestEnv;
  directory: Directory;
  server: LdapServer;
  tls: TlsMaterial;
  app: App;
  appDn: string;
  appPassword: string;
  users: Record<'alice' | 'bob' | 'carol' | 'dave' | 'erin', User>;
  url: string;
  ldapsUrl: string;
  close(): Promise<void>;
}

export const PASSWORD = 'correct horse battery';

export async function startFixture(opts: { backend?: 'sqlite' | 'postgres'; throttle?: Partial<ThrottleLimits> } = {}): Promise<Fixture> {
  const env = await testEnv({ backend: opts.backend ?? 'sqlite' });
  const logger = createLogger('ldap-test', 'warn');
  const directory = await Directory.open(env.config, { watch: true, logger, throttle: opts.throttle });
  const add = (username: string, displayName: string): Promise<User> =>
    directory.addUser({ username, email: `${username}@example.test`, password: PASSWORD, displayName, fallbackEmail: `${username}@fallback.test` });
  const alice = await add('alice', 'Alice Liddell');
  const bob = await add('bob', 'Bob');
  const carol = await add('carol', 'Carol Ann Smith');
  const dave = await add('dave', 'Dave Jones');
  const erin = await add('erin', 'Erin Disabled');
  const staff = await directory.addGroup('staff');
  await directory.addGroup('others');
  for (const u of ['carol', 'dave', 'erin']) await directory.addMember('staff', u);
  await directory.addMember('others', 'bob');
  await directory.addMember('others', 'alice');
  await directory.setActive('erin', false);
  const appPassword = generateSecret();
  const appDn = 'cn=wiki,ou=apps,dc=cloudron';
  const app: App = {
    id: 'wiki',
    domain: 'wiki.example.test',
    manifest: { addons: { ldap: {} } },
    access: { userIds: [alice.id], groupIds: [staff.id] },
    upstream: null,
    credentials: { ldap: { bindDn: appDn, bindPassword: appPassword } },
    createdAt: new Date().toISOString(),
  };
  await directory.putApp(app, []);
  const tls = await loadTls(env.config);
  const server = await startLdap({ directory, logger, host: '127.0.0.1', port: 0, ldapsPort: 0, tls });
  return {
    env,
    directory,
    server,
    tls,
    app,
    appDn,
    appPassword,
    users: { alice, bob, carol, dave, erin: directory.userById(erin.id)! },
    url: `ldap://127.0.0.1:${server.port}`,
    ldapsUrl: `ldaps://127.0.0.1:${server.ldapsPort}`,
    close: async () => {
      await server.close();
      await directory.close();
      await env.cleanup();
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs an ldap-utils client with a clean environment (no HOME, so no ~/.ldaprc), bounded in time. */
export async function run(cmd: string, args: string[], env: Record<string, string> = {}, input?: string): Promise<RunResult> {
  const r = await runCommand(cmd, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, inheritEnv: false, input: input ?? '', timeoutMs: 20_000 });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Parses LDIF as ldapsearch -LLL prints it (unfolded), into dn → attribute → values. */
export function parseLdif(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  const unfolded = text.replace(/\n /g, '');
  for (const block of unfolded.split(/\n\n+/)) {
    let current: Map<string, string[]> | null = null;
    for (const line of block.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([^:]+):(:?) ?(.*)$/.exec(line);
      if (!m) continue;
      const value = m[2] ? Buffer.from(m[3]!, 'base64').toString('utf8') : m[3]!;
      if (m[1] === 'dn') {
        current = new Map();
        out.set(value, current);
      } else if (current) {
        const k = m[1]!;
        current.set(k, [...(current.get(k) ?? []), value]);
      }
    }
  }
  return out;
}
