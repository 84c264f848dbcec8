import { ProvisionError } from '../addon.ts';
import { redactUrl } from './names.ts';

/** The reason an addon could not reach its server, naming the addon and the setting to fix. */
export function unreachable(addon: string, setting: string, url: string, err: unknown): ProvisionError {
  return new ProvisionError(`the ${addon} addon cannot connect to ${redactUrl(url)} (${setting}): ${oneLine(err)}`);
}

export function notConfigured(addon: string, setting: string): ProvisionError {
  return new ProvisionError(`the ${addon} addon needs a server: set ${setting}`);
}

/** A server-side failure after connecting, prefixed with the addon's name. */
export function addonFailure(addon: string, err: unknown): ProvisionError {
  return err instanceof ProvisionError ? err : new ProvisionError(`the ${addon} addon failed: ${oneLine(err)}`);
}

function oneLine(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: unknown[] };
  // AggregateError (e.g. ECONNREFUSED on ::1 and 127.0.0.1) has an empty message of its own.
  const message = e?.message || (e?.errors?.[0] as Error | undefined)?.message || e?.code || String(err);
  return message.split('\n')[0]!;
}

/**
 * Records `what` as created unless the server answered with an error (then it was not made).
 * A lost connection leaves it unknown, so it counts as created: undoing uses IF EXISTS.
 */
export async function step(created: string[], what: string, isServerError: (err: unknown) => boolean, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    if (!isServerError(err)) created.push(what);
    throw err;
  }
  created.push(what);
}

/**
 * After a failed first install: undoes what was created on fresh connections (the failed one may
 * be gone), trying a few times, then throws the original failure — saying what is left if undoing failed too.
 */
export async function undoAndThrow(addon: string, err: unknown, created: string[], undo: () => Promise<void>): Promise<never> {
  let last: unknown;
  for (let attempt = 1; created.length && attempt <= 3; attempt++) {
    try {
      await undo();
      last = undefined;
      break;
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }
  const failure = addonFailure(addon, err);
  if (last) throw new ProvisionError(`${failure.message}; could not undo, left on the server: ${created.join(', ')} (${oneLine(last)})`);
  throw failure;
}
