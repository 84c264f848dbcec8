import type { AddonContext } from '../addon.ts';

/**
 * The app's own mail address, `<first label of its domain>.app@HEARTH_DOMAIN`. When
 * another app or user already holds that address, a numeric suffix keeps it unique.
 */
export function appMailAddress(ctx: AddonContext): string {
  const label = ctx.app.domain.split('.')[0]!.toLowerCase();
  const takenByOther = (address: string): boolean => {
    const box = ctx.directory.mailbox(address);
    if (box && !(box.ownerType === 'app' && box.ownerId === ctx.app.id)) return true;
    if (ctx.directory.userByEmail(address)) return true;
    return ctx.directory.apps().some((a) => a.id !== ctx.app.id && (a.credentials.sendmail?.username === address || a.credentials.recvmail?.username === address));
  };
  for (let n = 1; ; n++) {
    const address = `${n === 1 ? label : `${label}-${n}`}.app@${ctx.config.domain}`;
    if (!takenByOther(address)) return address;
  }
}
