import { Directory } from '@hearth/directory';
import { freePort, startDaemon, testEnv, type TestEnv } from '@hearth/testkit';

export interface HearthSmtp {
  env: TestEnv;
  /** the daemon's pid (for its CPU time) */
  pid: number;
  ports: { submission: number; mx: number };
  stop(): Promise<void>;
}

/**
 * Starts the SMTP daemon for a bench: a fresh data directory with one user whose mailbox is
 * `address`, no rate limits, `prepare` run before the daemon starts (folders, scripts), extra
 * settings in `env`. Shared by bench:smtp and bench:sieve.
 */
export async function startHearthSmtp(address: string, env: Record<string, string>, prepare?: (t: TestEnv) => Promise<void>): Promise<HearthSmtp> {
  const [local, domain] = address.split('@') as [string, string];
  const ports = { submission: await freePort(), mx: await freePort() };
  const t = await testEnv({
    env: {
      HEARTH_DOMAIN: domain,
      HEARTH_SMTP_PORT: String(ports.submission),
      HEARTH_SMTPS_PORT: String(await freePort()),
      HEARTH_SMTP_INBOUND_PORT: String(ports.mx),
      HEARTH_SMTP_RATE_PER_IP: '0',
      HEARTH_SMTP_RATE_PER_SENDER: '0',
      HEARTH_LOG_LEVEL: 'info',
      ...env,
    },
  });
  const directory = await Directory.open(t.config);
  await directory.addUser({ username: local, email: address, password: 'bench-password-1' });
  await directory.addMailbox(address, local);
  await directory.close();
  await prepare?.(t);
  const daemon = await startDaemon('services/smtp/src/main.ts', t.env, (o) => o.includes('"msg":"ready"'), 60_000);
  return {
    env: t,
    pid: daemon.child.pid!,
    ports,
    async stop() {
      await daemon.stop();
      await t.cleanup();
    },
  };
}
