import fs from 'node:fs';
import path from 'node:path';

/**
 * A restore applies in two phases. Everything is first restored aside (files into a folder
 * beside their target, databases into temporary databases); only then is each piece swapped
 * in. A swap that fails puts every piece already swapped back, so a failed restore leaves
 * what was there before.
 */
export interface SwapStep {
  what: string;
  commit(): Promise<void>;
  /** undoes commit (only called after commit succeeded) */
  rollback(): Promise<void>;
  /** removes what is left aside: the previous state after success, the restored copy after failure */
  cleanup(): Promise<void>;
}

export async function applySwaps(steps: SwapStep[]): Promise<void> {
  const done: SwapStep[] = [];
  try {
    for (const s of steps) {
      await s.commit();
      done.push(s);
    }
  } catch (err) {
    const stuck: string[] = [];
    for (const s of done.reverse()) await s.rollback().catch((e: Error) => stuck.push(`${s.what}: ${e.message}`));
    if (stuck.length && err instanceof Error) err.message += `; could not put back ${stuck.join('; ')}`;
    throw err;
  } finally {
    for (const s of steps) await s.cleanup().catch(() => {});
  }
}

/** Swaps the folder (or file) `replacement` in at `target`, keeping the previous one until cleanup. */
export function pathSwap(what: string, target: string, replacement: string): SwapStep {
  const old = `${target}.before-restore`;
  let hadTarget = false;
  return {
    what,
    async commit() {
      fs.rmSync(old, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
      hadTarget = fs.existsSync(target);
      if (hadTarget) fs.renameSync(target, old);
      try {
        fs.renameSync(replacement, target);
      } catch (err) {
        if (hadTarget) fs.renameSync(old, target);
        throw err;
      }
    },
    async rollback() {
      fs.renameSync(target, replacement);
      if (hadTarget) fs.renameSync(old, target);
    },
    async cleanup() {
      fs.rmSync(old, { recursive: true, force: true });
      fs.rmSync(replacement, { recursive: true, force: true });
    },
  };
}
