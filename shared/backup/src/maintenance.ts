import type { HearthConfig } from '@hearth/config';
import { Restic } from './restic.ts';
import type { BackupSettings } from './settings.ts';
import { withBackupLock, workspace } from './workspace.ts';

/** `hearth backup list | verify | prune`. */

export interface BackupEntry {
  id: string;
  shortId: string;
  time: string;
  /** "platform" or the app id */
  scope: string;
  hearthVersion: string | null;
}

export async function listBackups(config: HearthConfig, settings: BackupSettings): Promise<BackupEntry[]> {
  const restic = new Restic(settings, workspace(config).cache);
  const snapshots = await restic.snapshots(['hearth']);
  return snapshots
    .map((s) => {
      const tags = s.tags ?? [];
      const app = tags.find((t) => t.startsWith('app='));
      const version = tags.find((t) => t.startsWith('version='));
      return { id: s.id, shortId: s.short_id, time: s.time, scope: app ? app.slice(4) : 'platform', hearthVersion: version ? version.slice(8) : null };
    })
    .sort((a, b) => a.time.localeCompare(b.time));
}

/** restic's own check of the repository's structure, and with readData of every pack's contents. */
export async function verifyBackups(config: HearthConfig, settings: BackupSettings, opts: { readData?: boolean } = {}): Promise<string> {
  const restic = new Restic(settings, workspace(config).cache);
  const out = await restic.run(['check', ...(opts.readData ? ['--read-data'] : [])], { action: 'verify' });
  return out.split('\n').filter((l) => /no errors were found/i.test(l))[0] ?? 'no errors were found';
}

/**
 * Forgets snapshots beyond the retention settings and frees their space. Each scope (the
 * platform, each app) keeps its own daily/weekly/monthly series.
 */
export async function pruneBackups(config: HearthConfig, settings: BackupSettings): Promise<{ kept: number; removed: number }> {
  return withBackupLock(config, async () => {
    const restic = new Restic(settings, workspace(config).cache);
    const { daily, weekly, monthly } = settings.keep;
    const out = await restic.run(
      ['forget', '--json', '--prune', '--tag', 'hearth', '--group-by', 'tags', '--keep-daily', String(daily), '--keep-weekly', String(weekly), '--keep-monthly', String(monthly)],
      { action: 'prune' },
    );
    const line = out.split('\n').find((l) => l.startsWith('['));
    const groups = line ? (JSON.parse(line) as { keep?: unknown[] | null; remove?: unknown[] | null }[]) : [];
    return { kept: groups.reduce((n, g) => n + (g.keep?.length ?? 0), 0), removed: groups.reduce((n, g) => n + (g.remove?.length ?? 0), 0) };
  });
}
