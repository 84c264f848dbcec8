import { importFormat, ImportFileError, importGroups, importUsers, type ImportReport } from '@hearth/directory';
import { csrfField, html } from './pages/layout.ts';
import { view, type RequestContext, type Result, type Route } from './routes.ts';

/**
 * Bulk import of users or groups from an uploaded CSV or LDIF file, as `hearth user import` and
 * `hearth group import`: the same @hearth/directory checks and one transaction, a dry run, the
 * all-or-nothing option, and the per-line report.
 */

type Kind = 'users' | 'groups';

function importPage(c: RequestContext, o: { kind?: Kind; dryRun?: boolean; atomic?: boolean; report?: ImportReport; file?: string; error?: string } = {}): Result {
  const kind = o.kind ?? 'users';
  const r = o.report;
  const summary = r
    ? `${r.rows.length} row(s) in ${o.file}: ${r.accepted} accepted, ${r.refused} refused; ${r.dryRun ? 'dry run, nothing written' : r.imported ? `${r.accepted} created` : 'nothing imported'}${r.atomic && !r.dryRun && !r.imported && r.refused ? ' (all or nothing)' : ''}.`
    : '';
  return view(
    c,
    'Import users and groups',
    html`<form method="post" action="/admin/import" enctype="multipart/form-data">${csrfField(c.session.record.csrf)}
<label for="f-kind">What the file holds</label><select id="f-kind" name="kind"><option value="users"${kind === 'users' ? html` selected` : ''}>users</option><option value="groups"${kind === 'groups' ? html` selected` : ''}>groups</option></select>
<label for="f-file">CSV or LDIF file</label><p class="hint" id="f-file-hint">Users: columns username, email, and optionally displayName, fallbackEmail, role, password (or LDIF uid, mail, cn, userPassword). Groups: name, members (or LDIF cn, member, memberUid). A file ending in .ldif is read as LDIF.</p>
<input id="f-file" name="file" type="file" accept=".csv,.ldif,text/csv" required aria-describedby="f-file-hint">
<label><input type="checkbox" name="dryRun" value="yes"${o.dryRun ?? true ? html` checked` : ''}> Dry run: check and report, write nothing</label>
<label><input type="checkbox" name="atomic" value="yes"${o.atomic ? html` checked` : ''}> All or nothing: import nothing if any row is refused</label>
<div class="actions"><button type="submit">Import</button></div></form>
${r
  ? html`<h2>Report</h2><p role="status">${summary}</p>
<div class="table" tabindex="0" role="region" aria-label="Import report (scrolls sideways on small screens)"><table><thead><tr><th scope="col">Line</th><th scope="col">Name</th><th scope="col">Result</th><th scope="col">Reason</th></tr></thead><tbody>
${r.rows.map((row) => html`<tr><td>${row.line}</td><td>${row.name}</td><td>${row.result === 'refused' ? html`<span class="tag off">refused</span>` : row.result}</td><td>${row.reason ?? ''}</td></tr>`)}
</tbody></table></div>`
  : ''}`,
    { error: o.error, current: '/admin/import' },
  );
}

async function runImport(c: RequestContext): Promise<Result> {
  const kind: Kind = c.form.get('kind') === 'groups' ? 'groups' : 'users';
  const opts = { dryRun: c.form.get('dryRun') === 'yes', atomic: c.form.get('atomic') === 'yes' };
  const file = c.form.file('file');
  if (!file || file.content.length === 0) return importPage(c, { kind, ...opts, error: 'Choose a CSV or LDIF file to upload.' });
  let report: ImportReport;
  try {
    report = await (kind === 'users' ? importUsers : importGroups)(c.directory, file.content.toString('utf8'), importFormat(file.filename), opts);
  } catch (err) {
    if (err instanceof ImportFileError) return importPage(c, { kind, ...opts, error: err.message });
    throw err;
  }
  c.logger.info({ admin: c.user.username, kind, file: file.filename, dryRun: report.dryRun, accepted: report.accepted, refused: report.refused, imported: report.imported }, 'import in the console');
  return { ...importPage(c, { kind, ...opts, report, file: file.filename }), status: report.refused ? 400 : 200 };
}

export const importRoutes: Route[] = [
  { method: 'GET', path: /^\/admin\/import$/, admin: true, handler: (c) => importPage(c) },
  { method: 'POST', path: /^\/admin\/import$/, admin: true, handler: runImport },
];
