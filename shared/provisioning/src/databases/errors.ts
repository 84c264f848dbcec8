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
