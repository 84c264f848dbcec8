import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { appTestEnv, fillBusybox, fillFromHost, freePort, hearth, importedImage, parseEnvLines, startDaemon, waitFor, type AppTestEnv, type Daemon } from '@hearth/testkit';

/** Debian's ldapsearch, swaks and openssl (with perl for swaks) on busybox: the seed's debugging tools inside an app. */
const clientsImage = (): string =>
  importedImage('hearth-test/clients', (dir) => {
    fillBusybox(dir);
    fillFromHost(dir, ['/usr/bin/ldapsearch', '/usr/bin/swaks', '/usr/bin/perl', '/usr/bin/openssl', '/etc/ssl/openssl.cnf', '/etc/protocols', '/etc/services', '/etc/perl', '/usr/lib/x86_64-linux-gnu/perl5/5.36', '/usr/share/perl5', '/usr/lib/x86_64-linux-gnu/perl-base']);
  });

/** From inside the app's container, with its CLOUDRON_* variables, the seed's own client commands reach Hearth's LDAP, SMTP and IMAP (swaks gets --helo: the busybox image has no resolvable host name). */
describe('an app reaches the services from its container', () => {
  let t: AppTestEnv;
  let env: Record<string, string>;
  const daemons: Daemon[] = [];
  const id = `svc${Date.now().toString(36)}`;
  const inApp = (script: string): Promise<{ code: number; stdout: string; stderr: string }> => hearth(['app', 'exec', id, '--', 'sh', '-c', script], { env });

  before(async () => {
    const ports: Record<string, string> = {};
    for (const name of ['LDAP', 'LDAPS', 'SMTP', 'SMTPS', 'SMTP_INBOUND', 'IMAP', 'IMAPS', 'SIEVE']) ports[`HEARTH_${name}_PORT`] = String(await freePort());
    t = await appTestEnv(id, { base: clientsImage, cmd: 'exec sleep 100000', env: { ...ports, HEARTH_LOG_LEVEL: 'info' } });
    env = t.env;
    const ready = (out: string): boolean => out.includes('"msg":"ready"');
    // Migrate the store once before the daemons open it together.
    assert.equal((await hearth(['user', 'add', 'alice', '--email', 'alice@example.test', '--password', 'alice password 1'], { env })).code, 0);
    for (const d of ['ldap', 'smtp', 'imap']) daemons.push(await startDaemon(`services/${d}/src/main.ts`, env, ready, 60000));
    const manifest = `${t.dataDir}/app.json`;
    fs.writeFileSync(manifest, JSON.stringify({ addons: { ldap: {}, sendmail: {}, recvmail: {}, localstorage: {} } }));
    const r = await hearth(['app', 'install', manifest, '--id', id, '--domain', `${id}.example.test`, '--image', t.image], { env });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    await t.cleanup();
  });

  it('sees exactly the variables app env prints', async () => {
    const printed = parseEnvLines((await hearth(['app', 'env', id], { env })).stdout);
    const seen = parseEnvLines((await inApp('env')).stdout);
    assert.ok(Object.keys(printed).length >= 20);
    for (const [k, v] of Object.entries(printed)) assert.equal(seen[k], v, k);
  });

  it('lists users with ldapsearch, bound as the app', async () => {
    const r = await inApp('ldapsearch -x -H "${CLOUDRON_LDAP_URL}" -D "${CLOUDRON_LDAP_BIND_DN}" -w "${CLOUDRON_LDAP_BIND_PASSWORD}" -b "${CLOUDRON_LDAP_USERS_BASE_DN}" "(&(objectclass=user)(|(username=alice)(mail=alice)))" username mail');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^username: alice$/m);
    assert.match(r.stdout, /^mail: alice@example\.test$/m);
    assert.match(r.stdout, /^# numEntries: 1$/m);
    const wrong = await inApp('ldapsearch -x -H "${CLOUDRON_LDAP_URL}" -D "${CLOUDRON_LDAP_BIND_DN}" -w wrong -b "${CLOUDRON_LDAP_USERS_BASE_DN}"');
    assert.equal(wrong.code, 49, 'invalid credentials');
  });

  it('sends mail with the seed\'s swaks command and reads it back over IMAPS with openssl s_client', async () => {
    const r = await inApp('swaks --server "${CLOUDRON_MAIL_SMTP_SERVER}" -p "${CLOUDRON_MAIL_SMTP_PORT}" --from "${CLOUDRON_MAIL_FROM}" --to "${CLOUDRON_MAIL_TO}" --header "Subject: from the container" --body "Test mail from cloudron app" --helo "${CLOUDRON_APP_DOMAIN}" --auth-user "${CLOUDRON_MAIL_SMTP_USERNAME}" --auth-password "${CLOUDRON_MAIL_SMTP_PASSWORD}"');
    assert.equal(r.code, 0, JSON.stringify(r.stdout + r.stderr));
    assert.match(r.stdout, /^<- {2}235 /m);
    assert.match(r.stdout, /^<- {2}250 .*queued as /m);
    const imap = 'printf \'a LOGIN "%s" "%s"\\nb SELECT INBOX\\nc FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]\\nd LOGOUT\\n\' "$CLOUDRON_MAIL_IMAP_USERNAME" "$CLOUDRON_MAIL_IMAP_PASSWORD" | openssl s_client -connect "${CLOUDRON_MAIL_IMAP_SERVER}:${CLOUDRON_MAIL_IMAPS_PORT}" -crlf -quiet -ign_eof 2>/dev/null';
    const seen = await waitFor(async () => {
      const out = (await inApp(imap)).stdout;
      return /\* 1 EXISTS/.test(out) ? out : null;
    }, 30000, 1000);
    assert.match(seen!, /^a OK/m);
    assert.match(seen!, /Subject: from the container/);
  });
});
