import type { HearthConfig } from '@hearth/config';
import { auditInstant, check, DirectoryError, domainSchema, type Directory, type Role, type User } from '@hearth/directory';
import { printFields, printJson, printTable, readStdin, UsageError } from './output.ts';

export interface CommandContext {
  config: HearthConfig;
  directory: () => Promise<Directory>;
  values: Record<string, string | boolean | string[] | undefined>;
  args: string[];
}

export interface Command {
  path: string[];
  usage: string;
  /** number of positional arguments, exact or [min, max] */
  args: number | [number, number];
  options?: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;
  /** resolves to the exit status when it is not simply 0 (app exec passes the command's on) */
  run(ctx: CommandContext): Promise<void | number>;
}

export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const out = (line: string): void => void process.stdout.write(line + '\n');

async function passwordFrom(values: CommandContext['values']): Promise<string> {
  if (values['password-stdin']) {
    if (values.password !== undefined) throw new UsageError('use either --password or --password-stdin, not both');
    return (await readStdin()).replace(/\r?\n$/, '');
  }
  const p = str(values.password);
  if (p === undefined) throw new UsageError('a password is required: --password P or --password-stdin');
  return p;
}

function parseRole(v: unknown): Role | undefined {
  if (v === undefined) return undefined;
  if (v !== 'admin' && v !== 'user') throw new UsageError('--role must be admin or user');
  return v;
}

function userView(d: Directory, u: User): Record<string, unknown> {
  return {
    id: u.id,
    username: u.username,
    uidNumber: u.uidNumber,
    email: u.email,
    fallbackEmail: u.fallbackEmail,
    displayName: u.displayName,
    role: u.role,
    active: u.active,
    twoFactor: u.totpSecret !== null,
    groups: d.groupsOf(u.id).map((g) => g.name),
    createdAt: u.createdAt,
  };
}

function requireUser(d: Directory, login: string): User {
  const u = d.findUser(login);
  if (!u) throw new DirectoryError(`no such user: ${login}`, 'not_found');
  return u;
}

const passwordOptions = { password: { type: 'string' }, 'password-stdin': { type: 'boolean' } } as const;

export const COMMANDS: Command[] = [
  // ---- users ----
  {
    path: ['user', 'add'],
    usage: '<username> --email E [--password P | --password-stdin] [--display-name N] [--fallback-email F] [--role admin|user]',
    args: 1,
    options: { email: { type: 'string' }, 'display-name': { type: 'string' }, 'fallback-email': { type: 'string' }, role: { type: 'string' }, ...passwordOptions },
    async run({ directory, values, args }) {
      const email = str(values.email);
      if (!email) throw new UsageError('--email is required');
      const role = parseRole(values.role);
      const password = await passwordFrom(values);
      const u = await (await directory()).addUser({ username: args[0]!, email, password, displayName: str(values['display-name']), fallbackEmail: str(values['fallback-email']), role });
      out(`added user ${u.username} (${u.id})`);
    },
  },
  {
    path: ['user', 'list'],
    usage: '[--json]',
    args: 0,
    async run({ directory, values }) {
      const d = await directory();
      const rows = d.users().map((u) => userView(d, u)).sort((a, b) => String(a.username).localeCompare(String(b.username)));
      if (values.json) return printJson(rows);
      printTable(
        rows.map((r) => ({ username: r.username as string, email: r.email as string, name: r.displayName as string, role: r.role as string, active: r.active ? 'yes' : 'no', '2fa': r.twoFactor ? 'on' : 'off', groups: (r.groups as string[]).join(',') })),
        ['username', 'email', 'name', 'role', 'active', '2fa', 'groups'],
      );
    },
  },
  {
    path: ['user', 'show'],
    usage: '<u> [--json]',
    args: 1,
    async run({ directory, values, args }) {
      const d = await directory();
      const view = userView(d, requireUser(d, args[0]!));
      if (values.json) return printJson(view);
      printFields(Object.entries(view).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]));
    },
  },
  {
    path: ['user', 'set'],
    usage: '<u> [--email E] [--display-name N] [--fallback-email F] [--role admin|user]',
    args: 1,
    options: { email: { type: 'string' }, 'display-name': { type: 'string' }, 'fallback-email': { type: 'string' }, role: { type: 'string' } },
    async run({ directory, values, args }) {
      const patch = { email: str(values.email), displayName: str(values['display-name']), fallbackEmail: str(values['fallback-email']), role: parseRole(values.role) };
      if (Object.values(patch).every((v) => v === undefined)) throw new UsageError('nothing to change');
      const u = await (await directory()).updateUser(args[0]!, Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)));
      out(`updated user ${u.username}`);
    },
  },
  {
    path: ['user', 'passwd'],
    usage: '<u> [--password P | --password-stdin]',
    args: 1,
    options: { ...passwordOptions },
    async run({ directory, values, args }) {
      const password = await passwordFrom(values);
      await (await directory()).setPassword(args[0]!, password);
      out(`password changed for ${args[0]}`);
    },
  },
  ...(['disable', 'enable'] as const).map(
    (verb): Command => ({
      path: ['user', verb],
      usage: '<u>',
      args: 1,
      async run({ directory, args }) {
        await (await directory()).setActive(args[0]!, verb === 'enable');
        out(`${verb}d user ${args[0]}`);
      },
    }),
  ),
  {
    path: ['user', 'del'],
    usage: '<u>',
    args: 1,
    async run({ directory, args }) {
      await (await directory()).deleteUser(args[0]!);
      out(`deleted user ${args[0]}`);
    },
  },
  {
    path: ['user', 'totp', 'enable'],
    usage: '<u> [--json]',
    args: 1,
    async run({ directory, values, args }) {
      const { secret, uri } = await (await directory()).enableTotp(args[0]!);
      if (values.json) return printJson({ secret, uri });
      out(`secret: ${secret}`);
      out(`uri:    ${uri}`);
    },
  },
  {
    path: ['user', 'totp', 'disable'],
    usage: '<u>',
    args: 1,
    async run({ directory, args }) {
      await (await directory()).disableTotp(args[0]!);
      out(`two-factor login disabled for ${args[0]}`);
    },
  },
  // ---- groups ----
  {
    path: ['group', 'add'],
    usage: '<name>',
    args: 1,
    async run({ directory, args }) {
      const g = await (await directory()).addGroup(args[0]!);
      out(`added group ${g.name} (gidnumber ${g.gidNumber})`);
    },
  },
  {
    path: ['group', 'del'],
    usage: '<name>',
    args: 1,
    async run({ directory, args }) {
      await (await directory()).deleteGroup(args[0]!);
      out(`deleted group ${args[0]}`);
    },
  },
  {
    path: ['group', 'list'],
    usage: '[--json]',
    args: 0,
    async run({ directory, values }) {
      const d = await directory();
      const rows = d
        .groups()
        .map((g) => ({ name: g.name, gidNumber: g.gidNumber, members: g.memberIds.map((id) => d.userById(id)?.username ?? id).sort() }))
        .sort((a, b) => a.name.localeCompare(b.name));
      if (values.json) return printJson(rows);
      printTable(rows.map((r) => ({ name: r.name, gidnumber: r.gidNumber, members: r.members.join(',') })), ['name', 'gidnumber', 'members']);
    },
  },
  {
    path: ['group', 'add-member'],
    usage: '<group> <u>',
    args: 2,
    async run({ directory, args }) {
      await (await directory()).addMember(args[0]!, args[1]!);
      out(`added ${args[1]} to ${args[0]}`);
    },
  },
  {
    path: ['group', 'remove-member'],
    usage: '<group> <u>',
    args: 2,
    async run({ directory, args }) {
      await (await directory()).removeMember(args[0]!, args[1]!);
      out(`removed ${args[1]} from ${args[0]}`);
    },
  },
  // ---- mailboxes ----
  {
    path: ['mailbox', 'list'],
    usage: '[--json]',
    args: 0,
    async run({ directory, values }) {
      const d = await directory();
      const rows = d
        .mailboxes()
        .map((m) => ({ address: m.address, ownerType: m.ownerType, owner: m.ownerType === 'user' ? (d.userById(m.ownerId)?.username ?? m.ownerId) : m.ownerId }))
        .sort((a, b) => a.address.localeCompare(b.address));
      if (values.json) return printJson(rows);
      printTable(rows.map((r) => ({ address: r.address, owner: `${r.ownerType}:${r.owner}` })), ['address', 'owner']);
    },
  },
  {
    path: ['mailbox', 'add'],
    usage: '<local@domain> --owner <u>',
    args: 1,
    options: { owner: { type: 'string' } },
    async run({ directory, values, args }) {
      const owner = str(values.owner);
      if (!owner) throw new UsageError('--owner is required');
      const m = await (await directory()).addMailbox(args[0]!, owner);
      out(`added mailbox ${m.address}`);
    },
  },
  {
    path: ['mailbox', 'del'],
    usage: '<local@domain>',
    args: 1,
    async run({ directory, args }) {
      await (await directory()).deleteMailbox(args[0]!);
      out(`deleted mailbox ${args[0]}`);
    },
  },
  // ---- mail ----
  {
    path: ['mail', 'queue'],
    usage: '[--json] | mail queue retry [<id>] | mail queue delete <id>',
    args: 0,
    async run({ config, values }) {
      const { listQueue } = await import('@hearth/smtp/queue-admin');
      const entries = await listQueue(config);
      if (values.json) return printJson(entries);
      printTable(
        entries.flatMap((e) =>
          e.recipients.map((r) => ({ id: e.id, arrived: e.arrivedAt, from: e.from, to: r.address, status: r.status, attempts: r.attempts, next: r.nextAttempt, error: r.lastError })),
        ),
        ['id', 'arrived', 'from', 'to', 'status', 'attempts', 'next', 'error'],
      );
    },
  },
  {
    path: ['mail', 'queue', 'retry'],
    usage: '[<id>]',
    args: [0, 1],
    async run({ config, args }) {
      const { retryQueued, QueueAdminError } = await import('@hearth/smtp/queue-admin');
      try {
        await retryQueued(config, args[0]);
      } catch (err) {
        throw err instanceof QueueAdminError ? new DirectoryError(err.message, 'not_found') : err;
      }
      out(`asked the SMTP service to retry ${args[0] ?? 'every queued message'} now`);
    },
  },
  {
    path: ['mail', 'queue', 'delete'],
    usage: '<id>',
    args: 1,
    async run({ config, args }) {
      const { deleteQueued, QueueAdminError } = await import('@hearth/smtp/queue-admin');
      try {
        await deleteQueued(config, args[0]!);
      } catch (err) {
        throw err instanceof QueueAdminError ? new DirectoryError(err.message, 'not_found') : err;
      }
      out(`deleted ${args[0]} from the queue`);
    },
  },
  {
    path: ['mail', 'dkim'],
    usage: '<domain> [--json]',
    args: 1,
    async run({ config, values, args }) {
      const { dkimDnsRecord, dkimZoneLine } = await import('@hearth/smtp/dkim');
      const record = dkimDnsRecord(config, check(domainSchema, args[0]!));
      if (values.json) return printJson(record);
      out(dkimZoneLine(record));
    },
  },
  // ---- oidc ----
  {
    path: ['oidc', 'rotate-keys'],
    usage: '',
    args: 0,
    async run({ config }) {
      const { rotateKeys } = await import('@hearth/oidc/keys');
      const r = await rotateKeys(config);
      out(`rotated OIDC signing keys (generation ${r.version}); published key ids: ${r.kids.join(', ')}; tokens signed with the previous keys stay valid`);
    },
  },
  // ---- audit ----
  {
    path: ['audit'],
    usage: '[--user U] [--protocol P] [--app A] [--since TIME] [--until TIME] [--result ok|failed] [--limit N] [--json]',
    args: 0,
    options: { user: { type: 'string' }, protocol: { type: 'string' }, app: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, result: { type: 'string' }, limit: { type: 'string' } },
    async run({ directory, values }) {
      const limit = values.limit === undefined ? 50 : Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10000) throw new UsageError('--limit must be 1–10000');
      const instant = (option: 'since' | 'until'): string | undefined => {
        const text = str(values[option]);
        if (text === undefined) return undefined;
        const at = auditInstant(text);
        if (!at) throw new UsageError(`--${option} must be a date or a date and time (UTC unless a zone is given), e.g. 2026-12-08T09:30:00Z, not "${text}"`);
        return at;
      };
      const result = str(values.result);
      if (result !== undefined && result !== 'ok' && result !== 'failed') throw new UsageError('--result must be ok or failed');
      const events = await (await directory()).store.listAudit({ username: str(values.user), protocol: str(values.protocol) as never, appId: str(values.app), since: instant('since'), until: instant('until'), ok: result === undefined ? undefined : result === 'ok', limit });
      if (values.json) return printJson(events);
      printTable(
        events.map((e) => ({ at: e.at, user: e.username, protocol: e.protocol, app: e.appId, from: e.remote, result: e.ok ? 'ok' : `failed${e.detail ? ` (${e.detail})` : ''}` })),
        ['at', 'user', 'protocol', 'app', 'from', 'result'],
      );
    },
  },
];
