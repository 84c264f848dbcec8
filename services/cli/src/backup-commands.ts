import { createBackup, listBackups, parseBackupSettings, pruneBackups, restoreBackup, verifyBackups } from '@hearth/backup';
import type { Command } from './commands.ts';
import { printJson, printTable, UsageError } from './output.ts';

const out = (line: string): void => void process.stdout.write(line + '\n');
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** `hearth backup …`: snapshots of the platform or one app in a restic repository (see shared/backup). */
export const BACKUP_COMMANDS: Command[] = [
  {
    path: ['backup', 'create'],
    usage: '[--app <id>] [--json]',
    args: 0,
    options: { app: { type: 'string' } },
    async run({ config, values }) {
      const r = await createBackup({ config, settings: parseBackupSettings(), appId: str(values.app) });
      if (values.json) return printJson(r);
      if (r.repositoryCreated) out(`created a new backup repository`);
      out(`snapshot ${r.snapshotId} of ${r.manifest.scope === 'platform' ? 'the platform' : `app ${r.manifest.scope.app}`} (${r.manifest.apps.length} app(s)): ${r.filesNew} new and ${r.filesChanged} changed files, ${mib(r.bytesAdded)} added`);
      for (const s of r.manifest.skipped) out(`not included: ${s}`);
    },
  },
  {
    path: ['backup', 'list'],
    usage: '[--json]',
    args: 0,
    async run({ config, values }) {
      const list = await listBackups(config, parseBackupSettings());
      if (values.json) return printJson(list);
      printTable(list.map((b) => ({ id: b.shortId, time: b.time.replace(/\.\d+/, ''), scope: b.scope, version: b.hearthVersion })), ['id', 'time', 'scope', 'version']);
    },
  },
  {
    path: ['backup', 'restore'],
    usage: '<snapshot|latest> [--app <id>] [--to <dir>] [--json]',
    args: 1,
    options: { app: { type: 'string' }, to: { type: 'string' } },
    async run({ config, values, args }) {
      if (values.to === '') throw new UsageError('--to needs a folder');
      const r = await restoreBackup({ config, settings: parseBackupSettings(), snapshot: args[0]!, appId: str(values.app), to: str(values.to) });
      if (values.json) return printJson(r);
      out(`restored snapshot ${r.snapshotId.slice(0, 8)} (Hearth ${r.manifest.hearthVersion}, ${r.manifest.createdAt}):`);
      for (const what of r.restored) out(`  ${what}`);
    },
  },
  {
    path: ['backup', 'verify'],
    usage: '[--read-data]',
    args: 0,
    options: { 'read-data': { type: 'boolean' } },
    async run({ config, values }) {
      out(`repository checked: ${await verifyBackups(config, parseBackupSettings(), { readData: values['read-data'] === true })}`);
    },
  },
  {
    path: ['backup', 'prune'],
    usage: '[--json]',
    args: 0,
    async run({ config, values }) {
      const settings = parseBackupSettings();
      const r = await pruneBackups(config, settings);
      if (values.json) return printJson(r);
      out(`kept ${r.kept} snapshot(s), removed ${r.removed} (keeping ${settings.keep.daily} daily, ${settings.keep.weekly} weekly, ${settings.keep.monthly} monthly)`);
    },
  },
];
