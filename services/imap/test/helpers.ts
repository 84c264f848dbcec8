import { Directory } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { MailStore } from '@hearth/mailstore';
import { mountTmpfs, runCommand, testEnv, type SmallDisk, type TestEnv } from '@hearth/testkit';
import type { ConnectionLimits } from '@hearth/lineserver';
import { startImap, type RunningImap } from '../src/server.ts';
import { IMAP_CONNECTION_DEFAULTS } from '../src/settings.ts';

export interface Stack {
  env: TestEnv;
  directory: Directory;
  store: MailStore;
  imap: RunningImap;
  app: { username: string; password: string; address: string };
  user: { username: string; email: string; password: string };
  /** with `tmpfsBytes`: the small file system the whole data directory lives on */
  disk: SmallDisk | null;
  close(): Promise<void>;
}

/**
 * A directory with one recvmail app and one user (each owning a mailbox) and an IMAP server on free ports.
 * `tmpfsBytes` puts the data directory (store, mail, keys) on a tmpfs of that size; a string is
 * returned instead when that cannot be mounted here (why, for the skip message). `env` overrides
 * settings (HEARTH_LISTEN for a test's own loopback address).
 */
export async function stack(
  opts: {
    quotaBytes?: number;
    maxMessageBytes?: number;
    connections?: Partial<ConnectionLimits>;
    tmpfsBytes?: number;
    notifyBacklogBytes?: number;
    env?: Record<string, string>;
  } = {},
): Promise<Stack> {
  const env = await testEnv({ env: opts.env });
  let disk: SmallDisk | null = null;
  if (opts.tmpfsBytes) {
    const mounted = mountTmpfs(env.dataDir, opts.tmpfsBytes);
    if (typeof mounted === 'string') {
      await env.cleanup();
      throw new SkipStack(mounted);
    }
    disk = mounted;
  }
  const logger = createLogger('imap-test', 'warn');
  const directory = await Directory.open(env.config, { watch: true, logger });
  const app = { username: 'wiki.app@example.test', password: 'app-secret-1234', address: 'wiki.app@example.test' };
  await directory.putApp(
    {
      id: 'app-wiki',
      domain: 'wiki.example.test',
      manifest: { addons: { recvmail: {} } },
      access: null,
      upstream: null,
      credentials: { recvmail: { ...app } },
      createdAt: new Date().toISOString(),
    },
    [app.address],
  );
  const user = { username: 'alice', email: 'alice@example.test', password: 'alice-password-1' };
  await directory.addUser(user);
  await directory.addMailbox(user.email, user.username);
  const store = new MailStore(env.dataDir);
  const quota = { bytes: opts.quotaBytes ?? 100 * 1024 * 1024, messages: 0 };
  const imap = await startImap({
    config: env.config,
    directory,
    logger,
    store: new MailStore(env.dataDir, quota),
    settings: {
      maxMessageBytes: opts.maxMessageBytes ?? 1024 * 1024,
      quota,
      connections: { ...IMAP_CONNECTION_DEFAULTS, ...opts.connections },
      notifyBacklogBytes: opts.notifyBacklogBytes,
    },
    ports: { imap: 0, imaps: 0 },
  });
  return {
    env,
    directory,
    store,
    imap,
    app,
    user,
    disk,
    close: async () => {
      await imap.close();
      await directory.close();
      disk?.unmount();
      await env.cleanup();
    },
  };
}

/** stack() could not build what was asked for on this machine; the message says why */
export class SkipStack extends Error {}

export function message(subject: string, body = 'Hello there', extra = ''): Buffer {
  return Buffer.from(`From: Bob <bob@example.test>\r\nTo: wiki.app@example.test\r\nSubject: ${subject}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n${extra}\r\n${body}\r\n`);
}

/** Runs a program to completion (bounded), returning its exit code and output. */
export async function run(cmd: string, args: string[], opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runCommand(cmd, args, { input: opts.input ?? '', env: opts.env, timeoutMs: opts.timeoutMs ?? 30_000 });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}
