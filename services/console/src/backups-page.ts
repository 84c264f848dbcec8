import { randomBytes } from 'node:crypto';
import type { BackupEntry } from '@hearth/backup';
import type { Logger } from '@hearth/log';
import { csrfField, field, html, type Html } from './pages/layout.ts';
import { done, Refusal, userError, view, type RequestContext, type Result, type Route } from './routes.ts';

/**
 * `hearth backup list|create|restore|verify|prune` through the same @hearth/backup calls, loaded
 * when the page is first asked for (as the CLI loads its command groups): the backup code and what
 * it pulls in stay out of the console's start-up.
 *
 * Every operation but the list can take minutes (restic reads or writes the whole repository), so
 * it runs as a job in this process: the form's request returns at once and the page shows the
 * job's state until it ends. One job at a time — restic's repository lock would refuse a second,
 * and the backup workspace lock (`withBackupLock`) keeps out the CLI and the other replicas.
 */

export interface BackupJob {
  id: string;
  /** what the job does, e.g. "Restore app wiki from snapshot 1a2b3c4d" */
  title: string;
  by: string;
  startedAt: Date;
  finishedAt: Date | null;
  state: 'running' | 'done' | 'failed';
  /** what it did, or why it failed */
  lines: string[];
}

/** The console's backup job: the one running, or else the last one that ended. */
export class BackupJobs {
  private job: BackupJob | null = null;

  constructor(private readonly logger: Logger) {}

  get current(): BackupJob | null {
    return this.job;
  }

  /** Starts `run` unless a job is running; its outcome is kept for the page. */
  start(title: string, by: string, run: () => Promise<string[]>): BackupJob {
    if (this.job?.state === 'running') throw new Refusal(`A backup job is running (${this.job.title}); wait until it ends.`);
    const job: BackupJob = { id: randomBytes(6).toString('hex'), title, by, startedAt: new Date(), finishedAt: null, state: 'running', lines: [] };
    this.job = job;
    this.logger.info({ admin: by, job: title }, 'backup job started in the console');
    void run().then(
      (lines) => {
        Object.assign(job, { state: 'done', lines, finishedAt: new Date() });
        this.logger.info({ admin: by, job: title, result: lines }, 'backup job done');
      },
      (err: unknown) => {
        let message: string;
        try {
          message = userError(err);
        } catch {
          // Not one of the backup's own one-line refusals: restic's or the system's error, logged in full.
          message = `failed unexpectedly: ${(err as Error).message?.split('\n')[0] ?? String(err)}`;
          this.logger.error({ err, job: title }, 'backup job failed unexpectedly');
        }
        Object.assign(job, { state: 'failed', lines: [message], finishedAt: new Date() });
        this.logger.warn({ admin: by, job: title, error: message }, 'backup job failed');
      },
    );
    return job;
  }
}

const SNAPSHOT_ID = /^[0-9a-f]{8,64}$/;

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function clock(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace('T', ' ');
}

function jobSection(job: BackupJob | null): Html {
  if (!job) return html``;
  const state =
    job.state === 'running'
      ? html`running since ${clock(job.startedAt)} (started by ${job.by}). <a href="/admin/backups">Refresh</a> to see when it ends.`
      : html`${job.state === 'done' ? 'finished' : 'failed'} at ${clock(job.finishedAt!)} (started by ${job.by} at ${clock(job.startedAt)}).`;
  return html`<section aria-labelledby="job-title" class="job"><h2 id="job-title">${job.state === 'running' ? 'Running job' : 'Last job'}</h2>
<p role="status" id="job-state"><strong>${job.title}</strong>: ${state}</p>
${job.lines.length ? html`<ul aria-label="Job result">${job.lines.map((l) => html`<li>${l}</li>`)}</ul>` : ''}</section>`;
}

async function backupsPage(c: RequestContext, error?: string): Promise<Result> {
  const { listBackups, parseBackupSettings } = await import('@hearth/backup');
  const settings = parseBackupSettings();
  if (!settings.repository)
    return view(c, 'Backups', html`<p>No backup repository is configured. Set <code>HEARTH_BACKUP_REPOSITORY</code> (a path or a restic URL) and <code>HEARTH_BACKUP_PASSWORD_FILE</code> (a file holding its password, mode 600) for the console and the other daemons, then restart them.</p>`, { error, current: '/admin/backups' });
  // The job's state as it is before the listing starts: a job that ends while restic lists must not show
  // as finished beside a list read before its snapshot existed.
  const job = c.backupJobs.current && { ...c.backupJobs.current };
  // Listing fails while a first backup is still creating the repository: said in place, so a form's
  // error or the notice of a job just started still shows.
  let list: BackupEntry[] = [];
  let listError: string | null = null;
  try {
    list = await listBackups(c.config, settings);
  } catch (err) {
    listError = userError(err);
  }
  const csrf = c.session.record.csrf;
  const apps = c.directory.apps().map((a) => a.id);
  const { daily, weekly, monthly } = settings.keep;
  return view(
    c,
    'Backups',
    html`<p>Repository <code>${settings.repository}</code>.</p>
${jobSection(job)}
<h2>Create a backup</h2>
<form method="post" action="/admin/backups">${csrfField(csrf)}
<label for="f-app">What to back up</label><select id="f-app" name="app"><option value="">The whole platform</option>${apps.map((id) => html`<option value="${id}">App ${id}</option>`)}</select>
<div class="actions"><button type="submit">Create backup now</button></div></form>
<h2>Snapshots</h2>
${listError ? html`<p>The snapshots cannot be listed now: ${listError}</p>` : list.length ? html`<div class="table" tabindex="0" role="region" aria-label="Snapshots"><table><thead><tr><th scope="col">Snapshot</th><th scope="col">Time</th><th scope="col">Scope</th><th scope="col">Hearth version</th><th scope="col">Actions</th></tr></thead><tbody>
${list.map((b) => html`<tr><td><code>${b.shortId}</code></td><td>${b.time.replace(/\.\d+/, '')}</td><td>${b.scope}</td><td>${b.hearthVersion}</td><td><a href="/admin/backups/restore?snapshot=${b.id}" aria-label="Restore from snapshot ${b.shortId}…">Restore…</a></td></tr>`)}
</tbody></table></div>` : html`<p>No snapshots yet.</p>`}
<h2>Check the repository</h2>
<form method="post" action="/admin/backups/verify">${csrfField(csrf)}
<label><input type="checkbox" name="readData" value="yes"> Read every file's data too (slow: downloads the whole repository)</label>
<div class="actions"><button type="submit" class="secondary">Verify repository</button></div></form>
<h2>Prune</h2>
<form method="post" action="/admin/backups/prune">${csrfField(csrf)}
<p>Keeps ${daily} daily, ${weekly} weekly and ${monthly} monthly snapshots of the platform and of each app (<code>HEARTH_BACKUP_KEEP_*</code>), deletes the rest and frees their space.</p>
<label><input type="checkbox" name="confirm" value="yes" required> Delete the snapshots beyond these numbers</label>
<div class="actions"><button type="submit" class="danger">Prune snapshots</button></div></form>`,
    { error, current: '/admin/backups' },
  );
}

/** Runs `run` as the backup job and goes back to the page, or shows why it cannot start. */
async function startJob(c: RequestContext, title: string, run: () => Promise<string[]>): Promise<Result> {
  try {
    c.backupJobs.start(title, c.user.username, run);
  } catch (err) {
    return backupsPage(c, userError(err));
  }
  return done('/admin/backups', 'backup-started');
}

async function create(c: RequestContext): Promise<Result> {
  const { createBackup, parseBackupSettings } = await import('@hearth/backup');
  const appId = c.form.get('app');
  if (appId && !c.directory.app(appId)) return backupsPage(c, `There is no app ${appId}.`);
  return startJob(c, appId ? `Backup of app ${appId}` : 'Backup of the platform', async () => {
    const r = await createBackup({ config: c.config, settings: parseBackupSettings(), appId: appId || undefined, logger: c.logger });
    return [
      ...(r.repositoryCreated ? ['created a new backup repository'] : []),
      `snapshot ${r.snapshotId}: ${r.manifest.apps.length} app(s), ${r.filesNew} new and ${r.filesChanged} changed files, ${mib(r.bytesAdded)} added`,
      ...r.manifest.skipped.map((s) => `not included: ${s}`),
    ];
  });
}

async function verify(c: RequestContext): Promise<Result> {
  const { verifyBackups, parseBackupSettings } = await import('@hearth/backup');
  const readData = c.form.get('readData') === 'yes';
  return startJob(c, readData ? 'Check of the repository and all its data' : 'Check of the repository', async () => [`repository checked: ${await verifyBackups(c.config, parseBackupSettings(), { readData })}`]);
}

async function prune(c: RequestContext): Promise<Result> {
  const { pruneBackups, parseBackupSettings } = await import('@hearth/backup');
  if (c.form.get('confirm') !== 'yes') return backupsPage(c, 'Tick the box to confirm that old snapshots are deleted.');
  return startJob(c, 'Prune of old snapshots', async () => {
    const r = await pruneBackups(c.config, parseBackupSettings());
    return [`kept ${r.kept} snapshot(s), removed ${r.removed}`];
  });
}

interface RestoreForm {
  what: 'app' | 'files';
  app: string;
  to: string;
}

function restorePage(c: RequestContext, snapshot: string, f: RestoreForm, error?: string): Result {
  const short = snapshot.slice(0, 8);
  const checked = (v: RestoreForm['what']): string => (f.what === v ? ' checked' : '');
  return view(
    c,
    `Restore from snapshot ${short}`,
    html`<form method="post" action="/admin/backups/restore">${csrfField(c.session.record.csrf)}<input type="hidden" name="snapshot" value="${snapshot}">
<fieldset><legend>What to restore</legend>
<label><input type="radio" name="what" value="app"${checked('app')}> One app, in place: its data, databases and record replace the current ones (the app is stopped meanwhile, other apps are left alone)</label>
<label><input type="radio" name="what" value="files"${checked('files')}> Only extract the snapshot's files into a folder on the server, changing nothing</label>
</fieldset>
${field({ name: 'app', label: 'App id (for one app; with “extract”, only that app’s files)', value: f.app, autocomplete: 'off' })}
${field({ name: 'to', label: 'Folder on the server (for “extract”; it must not exist or be empty)', value: f.to, autocomplete: 'off' })}
<p class="hint">The whole platform is restored with <code>hearth backup restore ${short}</code> while Hearth is stopped: the console cannot replace the data it runs on.</p>
${field({ name: 'confirm', label: `Type the snapshot id (${short}) to confirm`, required: true, autocomplete: 'off' })}
<div class="actions"><button type="submit" class="danger">Restore</button><a href="/admin/backups">Cancel</a></div></form>`,
    { error, current: '/admin/backups' },
  );
}

function snapshotParam(value: string): string | null {
  const s = value.trim().toLowerCase();
  return SNAPSHOT_ID.test(s) ? s : null;
}

async function restore(c: RequestContext): Promise<Result> {
  const { restoreBackup, parseBackupSettings } = await import('@hearth/backup');
  const snapshot = snapshotParam(c.form.get('snapshot'));
  if (!snapshot) return backupsPage(c, 'Choose a snapshot from the list.');
  const what = c.form.get('what');
  const f: RestoreForm = { what: what === 'files' ? 'files' : 'app', app: c.form.get('app').trim(), to: c.form.get('to').trim() };
  if (what !== 'app' && what !== 'files') return restorePage(c, snapshot, f, 'Choose what to restore.');
  if (what === 'app' && !f.app) return restorePage(c, snapshot, f, 'Name the app to restore.');
  if (what === 'files' && !f.to.startsWith('/')) return restorePage(c, snapshot, f, 'Give the folder as an absolute path.');
  if (c.form.get('confirm').trim().toLowerCase() !== snapshot.slice(0, 8)) return restorePage(c, snapshot, f, `Type ${snapshot.slice(0, 8)} exactly to confirm.`);
  const short = snapshot.slice(0, 8);
  const title = what === 'app' ? `Restore of app ${f.app} from snapshot ${short}` : `Extraction of snapshot ${short}${f.app ? ` (app ${f.app})` : ''} into ${f.to}`;
  return startJob(c, title, async () => {
    const r = await restoreBackup({ config: c.config, settings: parseBackupSettings(), snapshot, appId: f.app || undefined, to: what === 'files' ? f.to : undefined, logger: c.logger });
    return [`restored snapshot ${r.snapshotId.slice(0, 8)} (Hearth ${r.manifest.hearthVersion}, ${r.manifest.createdAt})`, ...r.restored];
  });
}

export const backupRoutes: Route[] = [
  { method: 'GET', path: /^\/admin\/backups$/, admin: true, handler: (c) => backupsPage(c) },
  { method: 'POST', path: /^\/admin\/backups$/, admin: true, handler: create },
  {
    method: 'GET',
    path: /^\/admin\/backups\/restore$/,
    admin: true,
    handler: (c) => {
      const snapshot = snapshotParam(c.url.searchParams.get('snapshot') ?? '');
      return snapshot ? restorePage(c, snapshot, { what: 'app', app: '', to: '' }) : backupsPage(c, 'Choose a snapshot from the list.');
    },
  },
  { method: 'POST', path: /^\/admin\/backups\/restore$/, admin: true, handler: restore },
  { method: 'POST', path: /^\/admin\/backups\/verify$/, admin: true, handler: verify },
  { method: 'POST', path: /^\/admin\/backups\/prune$/, admin: true, handler: prune },
];
