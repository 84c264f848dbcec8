import fs from 'node:fs';
import { importFormat, importGroups, importUsers, type Directory, type ImportOptions, type ImportReport } from '@hearth/directory';
import type { Command } from './commands.ts';
import { printJson, printTable } from './output.ts';

/**
 * `hearth user import` and `hearth group import`: the checks and the one transaction are
 * @hearth/directory's (the console's import page runs the same); this prints the per-line report.
 */

function report(r: ImportReport, opts: { json: boolean; file: string }): number {
  const { rows, accepted, refused } = r;
  if (opts.json) printJson({ file: opts.file, dryRun: r.dryRun, atomic: r.atomic, imported: r.imported, accepted, refused, rows });
  else printTable(rows.map((row) => ({ line: row.line, name: row.name, result: row.result, reason: row.reason })), ['line', 'name', 'result', 'reason']);
  const what = r.dryRun ? 'dry run, nothing written' : r.imported ? `${accepted} created` : 'nothing imported';
  if (refused === 0) {
    if (!opts.json) process.stdout.write(`${rows.length} row(s): ${what}\n`);
    return 0;
  }
  process.stderr.write(`hearth: ${refused} of ${rows.length} row(s) refused; ${what}${r.atomic && !r.dryRun ? ' (--atomic)' : ''}\n`);
  return 1;
}

const importOptions = { 'dry-run': { type: 'boolean' }, atomic: { type: 'boolean' } } as const;

function importCommand(what: 'user' | 'group', run: (d: Directory, text: string, format: 'csv' | 'ldif', opts: ImportOptions) => Promise<ImportReport>): Command {
  return {
    path: [what, 'import'],
    usage: '<file.csv|file.ldif> [--dry-run] [--atomic] [--json]',
    args: 1,
    options: importOptions,
    async run({ directory, values, args }) {
      const file = args[0]!;
      const r = await run(await directory(), fs.readFileSync(file, 'utf8'), importFormat(file), { dryRun: values['dry-run'] === true, atomic: values.atomic === true });
      return report(r, { json: values.json === true, file });
    },
  };
}

export const IMPORT_COMMANDS: Command[] = [importCommand('user', importUsers), importCommand('group', importGroups)];
