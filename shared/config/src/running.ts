import fs from 'node:fs';
import path from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, processAlive } from './files.ts';

/**
 * Which of Hearth's long-running processes (`npm start`'s supervisor, each daemon) work on a data
 * directory: each keeps `$HEARTH_DATA_DIR/run/<name>.<pid>.pid` while it lives, so that what must
 * not run beside them (a platform restore) can tell, and name them.
 */

function runDir(dataDir: string): string {
  return path.join(dataDir, 'run');
}

/** Marks this process as running `name` on the data dir until it exits. */
export function announceRunning(dataDir: string, name: string): void {
  const dir = runDir(dataDir);
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const file = path.join(dir, `${name}.${process.pid}.pid`);
  fs.writeFileSync(file, `${process.pid}\n`, { mode: PRIVATE_FILE_MODE });
  process.once('exit', () => fs.rmSync(file, { force: true }));
}

/** A live process of ours: the pid exists and (where /proc tells) is a node process, not a reused pid. */
function ours(pid: number): boolean {
  if (!processAlive(pid)) return false;
  try {
    return /node/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true;
  }
}

/** The Hearth processes running on the data dir now; files of processes that died are removed. */
export function runningProcesses(dataDir: string): { name: string; pid: number }[] {
  let files: string[];
  try {
    files = fs.readdirSync(runDir(dataDir));
  } catch {
    return [];
  }
  const out: { name: string; pid: number }[] = [];
  for (const f of files) {
    const m = /^(.+)\.(\d+)\.pid$/.exec(f);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid !== process.pid && ours(pid)) out.push({ name: m[1]!, pid });
    else if (pid !== process.pid) fs.rmSync(path.join(runDir(dataDir), f), { force: true });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
