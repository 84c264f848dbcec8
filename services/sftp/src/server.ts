import { timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import ssh2, { type AuthContext, type Connection } from 'ssh2';
import type { HearthConfig } from '@hearth/config';
import type { RunningService } from '@hearth/daemon';
import { throttleAccount, type Directory } from '@hearth/directory';
import { ConnectionPool, listenAll } from '@hearth/lineserver';
import type { Logger } from '@hearth/log';
import { appDataDir } from '@hearth/provisioning';
import { ftpApp, isAdmin, mayUse, parseLogin } from './access.ts';
import { Chroot } from './chroot.ts';
import { loadHostKey } from './host-key.ts';
import { QuotaTracker } from './quota.ts';
import type { SftpSettings } from './settings.ts';
import { serveSftp } from './sftp-session.ts';

/** sshd's LoginGraceTime default */
const LOGIN_GRACE_MS = 120_000;

interface Login {
  userId: string;
  username: string;
  appId: string;
}

/**
 * SFTP to the app data folders of apps with the localstorage `ftp` option. Logins go through
 * the directory (its throttle and audit); a session offers the sftp subsystem only, chrooted to
 * the app's folder, and ends within a second of the user or the app losing access.
 */
export async function startSftp(opts: { config: HearthConfig; directory: Directory; logger: Logger; settings: SftpSettings }): Promise<RunningService & { port: number }> {
  const { config, directory, logger, settings } = opts;
  const quota = new QuotaTracker(settings.quotaBytes);
  const live = new Map<Connection, Login>();

  const authenticate = async (ctx: AuthContext, remote: string | null): Promise<Login | null> => {
    const parsed = parseLogin(ctx.username);
    if (ctx.method === 'password') {
      const target = parsed ? ftpApp(directory, parsed.appRef) : null;
      if (!parsed || !target) {
        // Same cost and the same answer as a wrong password, counted by the throttle and audited (which logs it).
        const user = parsed ? directory.findUser(parsed.login) : undefined;
        const attempt = await directory.throttle.begin(throttleAccount('user', user?.id ?? null, parsed?.login ?? ctx.username), remote);
        await directory.hasher.verifyDummy(ctx.password);
        if (!attempt.blocked) await attempt.failed();
        await directory.audit({ username: user?.username ?? ctx.username, protocol: 'sftp', remote, ok: false, detail: parsed ? 'no such app with ftp access' : 'user name is not user@app-domain' });
        return null;
      }
      const known = directory.findUser(parsed.login);
      const r = await directory.authenticate({ login: parsed.login, password: ctx.password, protocol: 'sftp', appId: known && isAdmin(known) ? null : target.app.id, remote });
      if (!r.ok) return null;
      return { userId: r.user.id, username: r.user.username, appId: target.app.id };
    }
    if (ctx.method === 'publickey' && parsed) {
      const user = directory.findUser(parsed.login);
      const target = ftpApp(directory, parsed.appRef);
      if (!user || !target || !mayUse(directory, user.id, target.app.id)) return null;
      if ((await directory.throttle.begin(throttleAccount('user', user.id, parsed.login), remote)).blocked) return null;
      const keys = await directory.store.listSshKeys(user.id);
      const key = keys.find((k) => k.algorithm === ctx.key.algo && timingSafeEqualB64(k.keyData, ctx.key.data));
      if (!key) return null;
      if (!ctx.signature) return { userId: user.id, username: user.username, appId: target.app.id };
      const parsedKey = ssh2.utils.parseKey(`${key.algorithm} ${key.keyData}`);
      if (parsedKey instanceof Error || parsedKey.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return null;
      await directory.audit({ username: user.username, protocol: 'sftp', appId: target.app.id, remote, ok: true, detail: `key ${key.fingerprint}` });
      return { userId: user.id, username: user.username, appId: target.app.id };
    }
    return null;
  };

  // ssh2 speaks SSH on sockets the shared layer accepted and admitted (caps, idle, lifetime), as smtp-server does for SMTP.
  const server = new ssh2.Server({ hostKeys: [loadHostKey(config)], ident: 'Hearth' }, (client, info) => {
    const remote = info.ip ?? null;
    let login: Login | null = null;
    client.on('error', (err) => logger.debug({ remote, err: err.message }, 'sftp connection error'));
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'password' && ctx.method !== 'publickey') return ctx.reject(['password', 'publickey']);
      authenticate(ctx, remote)
        .then((who) => {
          // A publickey query (no signature yet) is answered "key ok" without logging in.
          if (who && (ctx.method === 'password' || (ctx.method === 'publickey' && ctx.signature))) login = who;
          if (who) ctx.accept();
          else ctx.reject(['password', 'publickey']);
        })
        .catch((err: Error) => {
          logger.warn({ remote, err: err.message }, 'sftp authentication failed');
          ctx.reject();
        });
    });
    client.on('ready', () => {
      if (!login) return client.end();
      const who = login;
      live.set(client, who);
      logger.info({ user: who.username, app: who.appId, remote }, 'sftp session started');
      client.on('session', (accept) => {
        const session = accept();
        session.on('sftp', (acceptSftp, rejectSftp) => {
          const target = mayUse(directory, who.userId, who.appId);
          const dir = appDataDir(config.dataDir, who.appId);
          if (!target || !fs.existsSync(dir)) return rejectSftp();
          const sftp = acceptSftp();
          const counted = quota.open(who.appId, dir);
          const ready = Promise.all([Chroot.open(dir), counted]).then(([chroot]) => chroot);
          const served = serveSftp({ sftp, ready, appId: who.appId, uid: target.uid, quota, maxHandles: settings.maxHandles, logger });
          // The client's EOF (sftp quitting) ends the channel from our side too, so its ssh exits.
          sftp.on('end', () => sftp.end());
          sftp.on('close', () => {
            served.close();
            void counted.then(() => quota.close(who.appId));
          });
          ready.catch((err: Error) => {
            logger.warn({ app: who.appId, err: err.message }, 'sftp session could not start');
            sftp.end();
          });
        });
        for (const refused of ['shell', 'exec', 'pty', 'x11', 'env', 'subsystem'] as const) {
          session.on(refused as 'shell', (_accept: unknown, reject?: () => void) => reject?.());
        }
      });
      client.on('tcpip', (_accept, reject) => reject());
      client.on('request', (_accept, reject) => reject?.());
    });
    // As sshd's LoginGraceTime: a connection that has not logged in by then is closed, however chatty.
    const grace = setTimeout(() => {
      if (!login) client.end();
    }, LOGIN_GRACE_MS);
    grace.unref();
    client.on('close', () => {
      clearTimeout(grace);
      live.delete(client);
    });
  });

  // A disabled user, a changed access list or an app losing ftp ends the session now.
  const unsubscribe = directory.onChange(() => {
    for (const [client, who] of live) {
      if (!mayUse(directory, who.userId, who.appId)) {
        logger.info({ user: who.username, app: who.appId }, 'sftp session ended: access withdrawn');
        client.end();
        live.delete(client);
      }
    }
  });

  const pool = new ConnectionPool(settings.connections, { logger, protocol: 'SFTP' });
  const listeners = await listenAll({
    host: config.listen,
    tls: null,
    listeners: [{ scheme: 'sftp', port: config.ports.sftp, implicitTls: false, note: '(user@app-domain)' }],
    onConnection(socket) {
      const slot = pool.admit(socket, {
        // RFC 4253 4.2: lines before the identification string are allowed; clients show or log them.
        refusal: (reason) => `Too many connections${reason === 'address' ? ' from your address' : ''}, try again later\r\n`,
        onIdle: () => logger.info({ remote: socket.remoteAddress }, 'sftp connection closed: idle'),
      });
      if (slot) server.injectSocket(socket);
    },
  });
  const port = listeners.ports[0]!;
  return {
    port,
    endpoints: [`sftp://${config.hostname}:${port} (user@app-domain)`],
    close: async () => {
      unsubscribe();
      const stopped = listeners.close();
      for (const client of live.keys()) client.end();
      pool.closeAll();
      await stopped;
    },
  };
}

function timingSafeEqualB64(stored: string, presented: Buffer): boolean {
  const a = Buffer.from(stored, 'base64');
  return a.length === presented.length && timingSafeEqual(a, presented);
}
