import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, type HearthConfig } from '@hearth/config';
import { Directory, DirectoryError, ImportFileError, ValidationError } from '@hearth/directory';
import type { Command } from './commands.ts';
import { UsageError } from './output.ts';

const USAGE = `usage: hearth <command> [options]

  user add <username> --email E [--password P | --password-stdin] [--display-name N] [--fallback-email F] [--role admin|user]
  user list | show <u> | set <u> [--email E] [--display-name N] [--fallback-email F] [--role R]
  user passwd <u> [--password P | --password-stdin] | disable <u> | enable <u> | del <u>
  user totp enable <u> | totp disable <u>
  user import <file.csv|file.ldif> [--dry-run] [--atomic]   (columns: username,email,displayName,fallbackEmail,role,password)
  user ssh-key add <u> ["<public key line>" | --file F | -] | ssh-key list <u> | ssh-key del <u> <id|fingerprint>
  group add <name> | del <name> | list | add-member <group> <u> | remove-member <group> <u>
  group import <file.csv|file.ldif> [--dry-run] [--atomic]  (columns: name,members)
  app install <CloudronManifest.json> --id <appId> --domain <fqdn> [--access "users:a,b groups:g"] [--upstream URL]
  app install … --image <ref>   (runs the app's container on the Docker engine, HEARTH_DOCKER_HOST)
  app env <appId> | list | show <appId> | rotate <appId> | uninstall <appId>
  app start|stop|restart|status <appId> | logs <appId> [-f] [--tail N] [--task T] | exec <appId> [-- cmd …]
  app cert <appId> --cert F --key F   (the tls addon's certificate; the app is restarted)
  mailbox list | add <local@domain> --owner <u> | del <local@domain>
  mail queue [--json] | mail queue retry [<id>] | mail queue delete <id> | mail dkim <domain>
  oidc rotate-keys
  audit [--user U] [--protocol P] [--app A] [--limit N]
  status [--json]   (each service: up or down, version, uptime, key counters; from its metrics endpoint)
  backup create [--app <id>] | list | restore <snapshot|latest> [--app <id>] [--to <dir>] | verify [--read-data] | prune

Listings accept --json. Settings come from HEARTH_* environment variables (see README).`;

/**
 * The modules holding each command group, loaded only when one of its commands runs: a
 * one-shot command's start-up is mostly module loading, and `user list` needs none of the app
 * runtime, provisioning or backup code.
 */
const base = async (): Promise<Command[]> => (await import('./commands.ts')).COMMANDS;
const GROUPS: Record<string, () => Promise<Command[]>> = {
  user: async () => [...(await base()), ...(await import('./import-commands.ts')).IMPORT_COMMANDS, ...(await import('./ssh-key-commands.ts')).SSH_KEY_COMMANDS],
  group: async () => [...(await base()), ...(await import('./import-commands.ts')).IMPORT_COMMANDS],
  app: async () => (await import('./app-commands.ts')).APP_COMMANDS,
  mailbox: base,
  mail: base,
  oidc: base,
  audit: base,
  backup: async () => (await import('./backup-commands.ts')).BACKUP_COMMANDS,
  status: async () => (await import('./status-command.ts')).STATUS_COMMANDS,
};

/** Errors whose message is meant for the operator as it is; the modules load only on this (failing) path. */
async function operatorError(err: unknown): Promise<boolean> {
  const [{ ManifestError, ProvisionError }, { CertError, EngineError }, { BackupError }, { StatusError }] = await Promise.all([import('@hearth/provisioning'), import('@hearth/runtime'), import('@hearth/backup'), import('./status-command.ts')]);
  return [DirectoryError, ValidationError, ProvisionError, ManifestError, ConfigError, EngineError, CertError, BackupError, ImportFileError, StatusError].some((k) => err instanceof k);
}

async function match(argv: string[]): Promise<{ command: Command; rest: string[] } | null> {
  let best: { command: Command; rest: string[] } | null = null;
  const group = Object.hasOwn(GROUPS, argv[0]!) ? GROUPS[argv[0]!]! : null;
  for (const command of group ? await group() : []) {
    if (command.path.every((p, i) => argv[i] === p) && (!best || command.path.length > best.command.path.length)) {
      best = { command, rest: argv.slice(command.path.length) };
    }
  }
  return best;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(USAGE + '\n');
    return argv.length === 0 ? 2 : 0;
  }
  const found = await match(argv);
  if (!found) {
    process.stderr.write(`hearth: unknown command "${argv.slice(0, 2).join(' ')}"; run "hearth --help"\n`);
    return 2;
  }
  const { command, rest } = found;
  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: rest, options: { json: { type: 'boolean' }, ...command.options } as ParseArgsConfig['options'], allowPositionals: true, strict: true });
    values = parsed.values as typeof values;
    positionals = parsed.positionals;
  } catch (err) {
    process.stderr.write(`hearth ${command.path.join(' ')}: ${(err as Error).message.split('\n')[0]}\nusage: hearth ${command.path.join(' ')} ${command.usage}\n`);
    return 2;
  }
  const [min, max] = typeof command.args === 'number' ? [command.args, command.args] : command.args;
  if (positionals.length < min || positionals.length > max) {
    process.stderr.write(`usage: hearth ${command.path.join(' ')} ${command.usage}\n`);
    return 2;
  }
  let config: HearthConfig;
  let directory: Directory | null = null;
  try {
    config = loadConfig();
    const open = async (): Promise<Directory> => (directory ??= await Directory.open(config));
    return (await command.run({ config, directory: open, values, args: positionals })) ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`hearth ${command.path.join(' ')}: ${err.message}\nusage: hearth ${command.path.join(' ')} ${command.usage}\n`);
      return 2;
    }
    const known = await operatorError(err);
    const fsError = (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EACCES';
    const message = known || fsError ? (err as Error).message : `internal error: ${(err as Error).message}`;
    process.stderr.write(`hearth: ${message.split('\n')[0]}\n`);
    if (process.env.HEARTH_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  } finally {
    await (directory as Directory | null)?.close().catch(() => {});
  }
}

/** Resolves once everything written to `stream` so far has reached the OS, or its reader has gone away. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    stream.once('error', () => resolve());
    stream.write('', () => resolve());
  });
}

// Exit explicitly: open handles (pg pools, Redis, timers) must not keep a one-shot command alive.
// Writes to a pipe are asynchronous once its 64 KiB buffer is full, so wait for them before exiting.
const code = await main();
await Promise.all([drained(process.stdout), drained(process.stderr)]);
process.exit(code);
