import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { HearthConfig, PortName } from '@hearth/config';

export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

/** Every daemon Hearth has, with the endpoints it serves; only those present in this checkout are run. */
export const SERVICES: { name: string; ports: PortName[]; endpoints: (c: HearthConfig) => string[]; needsDocker?: true }[] = [
  { name: 'ldap', ports: ['ldap', 'ldaps'], endpoints: (c) => [`ldap://${c.hostname}:${c.ports.ldap}`, `ldaps://${c.hostname}:${c.ports.ldaps}`] },
  { name: 'smtp', ports: ['smtp', 'smtps', 'smtpInbound'], endpoints: (c) => [`smtp://${c.hostname}:${c.ports.smtp} (apps)`, `smtps://${c.hostname}:${c.ports.smtps} (apps)`, `smtp://${c.hostname}:${c.ports.smtpInbound} (inbound MX)`] },
  { name: 'imap', ports: ['imap', 'imaps'], endpoints: (c) => [`imap://${c.hostname}:${c.ports.imap}`, `imaps://${c.hostname}:${c.ports.imaps}`] },
  { name: 'pop3', ports: ['pop3', 'pop3s'], endpoints: (c) => [`pop3://${c.hostname}:${c.ports.pop3}`, `pop3s://${c.hostname}:${c.ports.pop3s}`] },
  { name: 'managesieve', ports: ['sieve'], endpoints: (c) => [`sieve://${c.hostname}:${c.ports.sieve} (ManageSieve, STARTTLS)`] },
  { name: 'oidc', ports: ['oidc'], endpoints: (c) => [`${c.oidcIssuer} (issuer)`] },
  { name: 'proxyauth', ports: ['proxyauth'], endpoints: (c) => [`http://${c.hostname}:${c.ports.proxyauth} (gateway, routed by Host)`] },
  { name: 'runtime', ports: [], needsDocker: true, endpoints: (c) => [`app containers on ${c.dockerHost} (scheduler, tls certificate restarts)`] },
  { name: 'turn', ports: ['turn', 'turnTls'], endpoints: (c) => [`stun/turn:${c.hostname}:${c.ports.turn} (udp, tcp)`, `turns:${c.hostname}:${c.ports.turnTls}`] },
  { name: 'dockerproxy', ports: ['dockerProxy'], needsDocker: true, endpoints: (c) => [`tcp://${c.hostname}:${c.ports.dockerProxy} (docker addon: Docker API over TLS, app certificates)`] },
  { name: 'sftp', ports: ['sftp'], endpoints: (c) => [`sftp://${c.hostname}:${c.ports.sftp} (app data; user name <user>@<app domain>)`] },
  { name: 'console', ports: ['console'], endpoints: (c) => [`${process.env.HEARTH_CONSOLE_URL?.replace(/\/+$/, '') || `http://${c.hostname}:${c.ports.console}`} (web console)`] },
];

/** What the supervisor records about its children, for the console's status page. */
export interface SupervisorStatus {
  startedAt: string;
  services: Record<string, { pid: number | null; restarts: number; startedAt: string }>;
}

export function supervisorStatusFile(dataDir: string): string {
  return path.join(dataDir, 'supervisor', 'status.json');
}

export function serviceEntry(name: string): string {
  return path.join(REPO_ROOT, 'services', name, 'src', 'main.ts');
}

/** A daemon's compiled entry point (`npm run build`), run with plain node. */
export function compiledEntry(name: string): string {
  return path.join(REPO_ROOT, 'services', name, 'dist', 'main.js');
}

/** The daemons present in this checkout (or image): those whose entry point exists. */
export function availableServices(entry: (name: string) => string = serviceEntry): typeof SERVICES {
  return SERVICES.filter((s) => fs.existsSync(entry(s.name)));
}

/** Whether a TCP port accepts a connection now (healthchecks, the console's status page). */
export function portAccepts(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: timeoutMs });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}
