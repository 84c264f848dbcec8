import type { User } from '@hearth/directory';
import { csrfField, html, postButton } from './pages/layout.ts';
import { done, Refusal, userError, view, type RequestContext, type Result, type Route } from './routes.ts';

/**
 * SSH public keys a user logs in to SFTP with (services/sftp), as `hearth user ssh-key add|list|del`:
 * the same Directory calls. Every user manages their own at /ssh-keys; an admin anyone's at
 * /admin/users/<u>/ssh-keys.
 */

const U = '([^/]+)';

async function keysPage(c: RequestContext, owner: User, base: string, o: { error?: string; line?: string } = {}): Promise<Result> {
  const csrf = c.session.record.csrf;
  const keys = await c.directory.sshKeys(owner.id);
  const self = owner.id === c.user.id;
  return view(
    c,
    self ? 'SSH keys' : `SSH keys of ${owner.username}`,
    html`<p>Public keys that sign ${self ? 'you' : owner.username} in to SFTP (as <code>${owner.username}@&lt;app domain&gt;</code>) without a password.</p>
${keys.length
  ? html`<div class="table" tabindex="0" role="region" aria-label="SSH keys (scrolls sideways on small screens)"><table><thead><tr><th scope="col">Type</th><th scope="col">Fingerprint</th><th scope="col">Comment</th><th scope="col">Added</th><th scope="col"><span class="hint">Action</span></th></tr></thead><tbody>
${keys.map((k) => html`<tr><td>${k.algorithm}</td><td><code>${k.fingerprint}</code></td><td>${k.comment}</td><td>${k.createdAt.slice(0, 10)}</td><td>${postButton(`${base}/delete`, csrf, 'Delete', { kind: 'secondary', hidden: { id: k.id }, aria: `Delete key ${k.fingerprint}` })}</td></tr>`)}
</tbody></table></div>`
  : html`<p>No keys yet.</p>`}
<h2>Add a key</h2>
<form method="post" action="${base}">${csrfField(csrf)}
<label for="f-key">Public key</label><p class="hint" id="f-key-hint">One line as in <code>~/.ssh/id_ed25519.pub</code>: type, key, optional comment.</p>
<textarea id="f-key" name="key" rows="3" required aria-describedby="f-key-hint" spellcheck="false">${o.line ?? ''}</textarea>
<div class="actions"><button type="submit">Add key</button></div></form>`,
    { error: o.error, current: self && base === '/ssh-keys' ? '/ssh-keys' : '/admin/users' },
  );
}

function owner(c: RequestContext, admin: boolean): User | null {
  return admin ? (c.directory.userByUsername(c.params[0]!) ?? null) : c.user;
}

function base(c: RequestContext, admin: boolean): string {
  return admin ? `/admin/users/${encodeURIComponent(c.params[0]!)}/ssh-keys` : '/ssh-keys';
}

const notFound = (c: RequestContext): Result => view(c, 'Not found', html`<p>There is no such user.</p>`, { status: 404 });

async function add(c: RequestContext, admin: boolean): Promise<Result> {
  const u = owner(c, admin);
  if (!u) return notFound(c);
  const line = c.form.get('key').trim();
  const lines = line.split(/\r?\n/).filter((l) => l.trim() && !l.trim().startsWith('#'));
  try {
    if (lines.length !== 1) throw new Refusal('expected exactly one public key line');
    const key = await c.directory.addSshKey(u.id, lines[0]!);
    c.logger.info({ by: c.user.username, username: u.username, fingerprint: key.fingerprint }, 'ssh key added in the console');
  } catch (err) {
    return keysPage(c, u, base(c, admin), { error: userError(err), line });
  }
  return done(base(c, admin), 'ssh-key-added');
}

async function remove(c: RequestContext, admin: boolean): Promise<Result> {
  const u = owner(c, admin);
  if (!u) return notFound(c);
  try {
    await c.directory.deleteSshKey(u.id, c.form.get('id'));
  } catch (err) {
    return keysPage(c, u, base(c, admin), { error: userError(err) });
  }
  return done(base(c, admin), 'ssh-key-deleted');
}

export const sshKeyRoutes: Route[] = [
  { method: 'GET', path: /^\/ssh-keys$/, handler: (c) => keysPage(c, c.user, '/ssh-keys') },
  { method: 'POST', path: /^\/ssh-keys$/, handler: (c) => add(c, false) },
  { method: 'POST', path: /^\/ssh-keys\/delete$/, handler: (c) => remove(c, false) },
  {
    method: 'GET',
    path: new RegExp(`^/admin/users/${U}/ssh-keys$`),
    admin: true,
    handler: (c) => {
      const u = owner(c, true);
      return u ? keysPage(c, u, base(c, true)) : notFound(c);
    },
  },
  { method: 'POST', path: new RegExp(`^/admin/users/${U}/ssh-keys$`), admin: true, handler: (c) => add(c, true) },
  { method: 'POST', path: new RegExp(`^/admin/users/${U}/ssh-keys/delete$`), admin: true, handler: (c) => remove(c, true) },
];
