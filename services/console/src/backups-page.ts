import type { BackupEntry } from '@hearth/backup';
import { html, postButton } from './pages/layout.ts';
import { done, userError, view, type RequestContext, type Result, type Route } from './routes.ts';

/**
 * `hearth backup list` and `hearth backup create` (the whole platform) through the same
 * @hearth/backup calls, loaded when the page is first asked for (as the CLI loads its command
 * groups): the backup code and what it pulls in stay out of the console's start-up.
 */

async function backupsPage(c: RequestContext, error?: string): Promise<Result> {
  const { listBackups, parseBackupSettings } = await import('@hearth/backup');
  const settings = parseBackupSettings();
  if (!settings.repository)
    return view(c, 'Backups', html`<p>No backup repository is configured. Set <code>HEARTH_BACKUP_REPOSITORY</code> (a path or a restic URL) and <code>HEARTH_BACKUP_PASSWORD_FILE</code> (a file holding its password, mode 600) for the console and the other daemons, then restart them.</p>`, { error, current: '/admin/backups' });
  let list: BackupEntry[] = [];
  try {
    list = await listBackups(c.config, settings);
  } catch (err) {
    error ??= userError(err);
  }
  return view(
    c,
    'Backups',
    html`<p>Repository <code>${settings.repository}</code>.</p>
<div class="actions">${postButton('/admin/backups', c.session.record.csrf, 'Create backup now')}</div>
${list.length ? html`<div class="table" tabindex="0" role="region" aria-label="Snapshots"><table><thead><tr><th scope="col">Snapshot</th><th scope="col">Time</th><th scope="col">Scope</th><th scope="col">Hearth version</th></tr></thead><tbody>
${list.map((b) => html`<tr><td><code>${b.shortId}</code></td><td>${b.time.replace(/\.\d+/, '')}</td><td>${b.scope}</td><td>${b.hearthVersion}</td></tr>`)}
</tbody></table></div>` : html`<p>No snapshots yet.</p>`}
<p class="hint">Restore, verify and prune with <code>hearth backup restore|verify|prune</code>.</p>`,
    { error, current: '/admin/backups' },
  );
}

async function createNow(c: RequestContext): Promise<Result> {
  const { createBackup, parseBackupSettings } = await import('@hearth/backup');
  try {
    const r = await createBackup({ config: c.config, settings: parseBackupSettings() });
    c.logger.info({ admin: c.user.username, snapshot: r.snapshotId }, 'backup created in the console');
  } catch (err) {
    return backupsPage(c, userError(err));
  }
  return done('/admin/backups', 'backup-created');
}

export const backupRoutes: Route[] = [
  { method: 'GET', path: /^\/admin\/backups$/, admin: true, handler: (c) => backupsPage(c) },
  { method: 'POST', path: /^\/admin\/backups$/, admin: true, handler: createNow },
];
