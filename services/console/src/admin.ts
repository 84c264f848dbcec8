import { auditInstant, type Role, type User } from '@hearth/directory';
import { appDeployer, appEnv, installApp, installAppCert, removeAppContainers, rotateApp, uninstallApp } from '@hearth/provisioning';
import { csrfField, field, html, postButton, type Html } from './pages/layout.ts';
import { done, Refusal, userError, view, type RequestContext, type Result, type Route } from './routes.ts';
import { CONSOLE_APP_ID } from './signin.ts';
import { totpKeyItems } from './self.ts';
import { sessionCounts, signOutEverywhere } from './sessions-page.ts';
import { serviceStatus } from './status.ts';
import { runAppAction, runtimeSection } from './app-runtime-page.ts';

/** Administration (role admin or owner): every action the `hearth` CLI has, through the same directory and provisioning code. */

export const PAGE_SIZE = 50;

/** Users sorted by username with their lowercase search text, built once per directory view (the array is replaced on every reload). */
const indexes = new WeakMap<User[], { users: User[]; text: string[] }>();
function userIndex(all: User[]): { users: User[]; text: string[] } {
  let index = indexes.get(all);
  if (!index) {
    const users = [...all].sort((a, b) => (a.username < b.username ? -1 : 1));
    index = { users, text: users.map((u) => `${u.username}\n${u.email}\n${u.displayName.toLowerCase()}`) };
    indexes.set(all, index);
  }
  return index;
}

/** A substring search over username, email and display name, one page at a time. */
export function searchUsers(all: User[], query: string, page: number): { users: User[]; total: number } {
  const q = query.trim().toLowerCase();
  const { users, text } = userIndex(all);
  if (!q) return { users: users.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE), total: users.length };
  const hits: User[] = [];
  for (let i = 0; i < users.length; i++) if (text[i]!.includes(q)) hits.push(users[i]!);
  return { users: hits.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE), total: hits.length };
}

function pageNumber(v: string | null): number {
  const n = Number(v ?? 1);
  return Number.isInteger(n) && n >= 1 && n <= 1_000_000 ? n - 1 : 0;
}

function usersPage(c: RequestContext): Result {
  const q = (c.url.searchParams.get('q') ?? '').slice(0, 128);
  const pageIdx = pageNumber(c.url.searchParams.get('page'));
  const { users, total } = searchUsers(c.directory.users(), q, pageIdx);
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const link = (p: number): string => `/admin/users?${new URLSearchParams({ ...(q ? { q } : {}), page: String(p + 1) })}`;
  return view(
    c,
    'Users',
    html`<form method="get" action="/admin/users" role="search">
<label for="q">Search users</label><input id="q" name="q" type="search" value="${q}" placeholder="username, email or name">
<div class="actions"><button type="submit">Search</button><a href="/admin/users/new">Add a user</a></div></form>
<p aria-live="polite">${total} user${total === 1 ? '' : 's'}${q ? ` matching “${q}”` : ''}; page ${pageIdx + 1} of ${pages}.</p>
<div class="table" tabindex="0" role="region" aria-label="Table (scrolls sideways on small screens)"><table><thead><tr><th scope="col">Username</th><th scope="col">Name</th><th scope="col">Email</th><th scope="col">Role</th><th scope="col">State</th></tr></thead><tbody>
${users.map((u) => html`<tr><td><a href="/admin/users/${encodeURIComponent(u.username)}">${u.username}</a></td><td>${u.displayName}</td><td>${u.email}</td><td>${u.role}</td><td>${u.active ? 'active' : html`<span class="tag off">disabled</span>`}${u.totpSecret ? html` <span class="tag">2FA</span>` : ''}</td></tr>`)}
</tbody></table></div>
<nav class="pager" aria-label="Pages">${pageIdx > 0 ? html`<a href="${link(pageIdx - 1)}" rel="prev">Previous page</a>` : ''}${pageIdx + 1 < pages ? html`<a href="${link(pageIdx + 1)}" rel="next">Next page</a>` : ''}</nav>`,
    { current: '/admin/users' },
  );
}

function roleSelect(value: Role): Html {
  return html`<label for="f-role">Role</label><select id="f-role" name="role">${(['user', 'admin'] as const).map((r) => html`<option value="${r}"${r === value ? html` selected` : ''}>${r}</option>`)}${value === 'owner' ? html`<option value="owner" selected>owner</option>` : ''}</select>`;
}

function newUserForm(c: RequestContext, v: Record<string, string> = {}, error?: string): Result {
  return view(
    c,
    'Add a user',
    html`<form method="post" action="/admin/users/new">${csrfField(c.session.record.csrf)}
${field({ name: 'username', label: 'Username', value: v.username, required: true, autocomplete: 'off', hint: 'Lowercase letters, digits, "." and "-".' })}
${field({ name: 'email', label: 'Email', type: 'email', value: v.email, required: true, autocomplete: 'off' })}
${field({ name: 'displayName', label: 'Display name', value: v.displayName, autocomplete: 'off' })}
${field({ name: 'fallbackEmail', label: 'Fallback email', type: 'email', value: v.fallbackEmail, autocomplete: 'off' })}
${field({ name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'new-password', hint: 'At least 8 characters.' })}
${roleSelect(v.role === 'admin' ? 'admin' : 'user')}
<div class="actions"><button type="submit">Create user</button></div></form>`,
    { error, current: '/admin/users' },
  );
}

async function createUser(c: RequestContext): Promise<Result> {
  const v = Object.fromEntries(['username', 'email', 'displayName', 'fallbackEmail', 'role'].map((k) => [k, c.form.get(k).trim()]));
  try {
    const user = await c.directory.addUser({
      username: v.username!,
      email: v.email!,
      password: c.form.get('password'),
      displayName: v.displayName || undefined,
      fallbackEmail: v.fallbackEmail || null,
      role: v.role === 'admin' ? 'admin' : 'user',
    });
    c.logger.info({ admin: c.user.username, username: user.username }, 'user created in the console');
    return done(`/admin/users/${encodeURIComponent(user.username)}`, 'user-created');
  } catch (err) {
    return newUserForm(c, v, userError(err));
  }
}

function targetUser(c: RequestContext): User | null {
  return c.directory.userByUsername(c.params[0]!) ?? null;
}

function notFound(c: RequestContext, what: string): Result {
  return view(c, 'Not found', html`<p>There is no such ${what}.</p>`, { status: 404 });
}

async function userPage(c: RequestContext, error?: string): Promise<Result> {
  const u = targetUser(c);
  if (!u) return notFound(c, 'user');
  const sessions = await sessionCounts(c, u.id);
  const csrf = c.session.record.csrf;
  const base = `/admin/users/${encodeURIComponent(u.username)}`;
  const self = u.id === c.user.id;
  return view(
    c,
    `User ${u.username}`,
    html`<p>Id <code>${u.id}</code> · created ${u.createdAt.slice(0, 10)} · ${u.active ? 'active' : html`<span class="tag off">disabled</span>`} · two-factor ${u.totpSecret ? 'on' : 'off'}</p>
<p>Groups: ${c.directory.groupsOf(u.id).map((g) => g.name).join(', ') || 'none'} · mailboxes: ${c.directory.mailboxesOf('user', u.id).map((m) => m.address).join(', ') || 'none'} · <a href="${base}/ssh-keys">SSH keys</a></p>
<h2>Details</h2>
<form method="post" action="${base}">${csrfField(csrf)}
${field({ name: 'email', label: 'Email', type: 'email', value: u.email, required: true, autocomplete: 'off' })}
${field({ name: 'displayName', label: 'Display name', value: u.displayName, autocomplete: 'off' })}
${field({ name: 'fallbackEmail', label: 'Fallback email', type: 'email', value: u.fallbackEmail ?? '', autocomplete: 'off' })}
${self ? '' : roleSelect(u.role)}
<div class="actions"><button type="submit">Save</button></div></form>
<h2>Reset password</h2>
<form method="post" action="${base}/password">${csrfField(csrf)}
${field({ name: 'password', label: 'New password', type: 'password', required: true, autocomplete: 'new-password', hint: 'At least 8 characters.' })}
<div class="actions"><button type="submit">Set password</button></div></form>
<h2>Account</h2>
<div class="actions">
${self ? html`<p class="hint">You cannot disable or delete your own account here.</p>` : u.active ? postButton(`${base}/disable`, csrf, 'Disable', { kind: 'secondary' }) : postButton(`${base}/enable`, csrf, 'Enable', { kind: 'secondary' })}
${postButton(`${base}/reset-2fa`, csrf, 'Reset two-factor and passkeys', { kind: 'secondary' })}
${u.totpSecret ? '' : postButton(`${base}/totp`, csrf, 'Set up two-factor for this user', { kind: 'secondary' })}
</div>
<h2>Sessions</h2>
<p>Signed in to the console ${sessions.console}×, to Hearth's single sign-on ${sessions.sso}×, to apps behind the sign-in wall ${sessions.gateway}×.</p>
<div class="actions">${postButton(`${base}/sign-out`, csrf, 'Sign out everywhere', { kind: 'secondary' })}</div>
<p class="hint">Ends every session and revokes every app's tokens: the next refresh fails and every app asks ${u.username} to sign in again.</p>
${self
  ? ''
  : html`<h2>Delete</h2><form method="post" action="${base}/delete">${csrfField(csrf)}
<label><input type="checkbox" name="confirm" value="yes" required> Delete ${u.username} and everything only they own</label>
<div class="actions"><button type="submit" class="danger">Delete user</button></div></form>`}`,
    { error, current: '/admin/users' },
  );
}

/** Runs one change to a user; a refused change re-renders the user page with the reason. */
async function userAction(c: RequestContext, act: (u: User) => Promise<unknown>, notice: Parameters<typeof done>[1], where?: string): Promise<Result> {
  const u = targetUser(c);
  if (!u) return notFound(c, 'user');
  try {
    await act(u);
  } catch (err) {
    return userPage(c, userError(err));
  }
  c.logger.info({ admin: c.user.username, username: u.username, action: notice }, 'user changed in the console');
  return done(where ?? `/admin/users/${encodeURIComponent(u.username)}`, notice);
}

function refuseSelf(c: RequestContext, u: User): void {
  if (u.id === c.user.id) throw new Refusal('you cannot do this to your own account');
}

/**
 * `hearth user totp enable <u>`: a new TOTP key is stored at once and shown to the admin this one
 * time (the answer to the POST, never stored in a page that can be reloaded), to hand to the user.
 */
async function enableTotpFor(c: RequestContext): Promise<Result> {
  const u = targetUser(c);
  if (!u) return notFound(c, 'user');
  if (u.totpSecret) return userPage(c, `${u.username} already has two-factor authentication; reset it first to issue a new key.`);
  const { secret } = await c.directory.enableTotp(u.id);
  c.logger.info({ admin: c.user.username, username: u.username }, 'two-factor set up for a user in the console');
  return view(
    c,
    `Two-factor for ${u.username}`,
    html`<p role="status">Two-factor authentication is on for ${u.username}: from now on, signing in asks for a code after the password. Give them this key over a safe channel; it is shown only this once.</p>
<ol>${await totpKeyItems(secret, u.email, 'the user’s')}</ol>
<p><a href="/admin/users/${encodeURIComponent(u.username)}">Back to ${u.username}</a></p>`,
    { current: '/admin/users' },
  );
}

async function saveUser(c: RequestContext): Promise<Result> {
  return userAction(
    c,
    (u) => {
      const role = c.form.get('role');
      return c.directory.updateUser(u.id, {
        email: c.form.get('email').trim(),
        displayName: c.form.get('displayName').trim() || u.username,
        fallbackEmail: c.form.get('fallbackEmail').trim() || null,
        ...(u.id !== c.user.id && (role === 'admin' || role === 'user') && u.role !== 'owner' ? { role } : {}),
      });
    },
    'user-saved',
  );
}

// ---- groups ----

function groupsPage(c: RequestContext, error?: string, name = ''): Result {
  const groups = [...c.directory.groups()].sort((a, b) => a.name.localeCompare(b.name));
  return view(
    c,
    'Groups',
    html`<div class="table" tabindex="0" role="region" aria-label="Table (scrolls sideways on small screens)"><table><thead><tr><th scope="col">Group</th><th scope="col">Members</th><th scope="col">gidNumber</th></tr></thead><tbody>
${groups.map((g) => html`<tr><td><a href="/admin/groups/${encodeURIComponent(g.name)}">${g.name}</a></td><td>${g.memberIds.length}</td><td>${g.gidNumber}</td></tr>`)}
</tbody></table></div>
<h2>Add a group</h2>
<form method="post" action="/admin/groups">${csrfField(c.session.record.csrf)}
${field({ name: 'name', label: 'Group name', value: name, required: true, autocomplete: 'off' })}
<div class="actions"><button type="submit">Create group</button></div></form>`,
    { error, current: '/admin/groups' },
  );
}

async function createGroup(c: RequestContext): Promise<Result> {
  const name = c.form.get('name').trim();
  try {
    const g = await c.directory.addGroup(name);
    return done(`/admin/groups/${encodeURIComponent(g.name)}`, 'group-created');
  } catch (err) {
    return groupsPage(c, userError(err), name);
  }
}

function groupPage(c: RequestContext, error?: string): Result {
  const g = c.directory.groupByName(c.params[0]!);
  if (!g) return notFound(c, 'group');
  const csrf = c.session.record.csrf;
  const base = `/admin/groups/${encodeURIComponent(g.name)}`;
  const members = g.memberIds.map((id) => c.directory.userById(id)).filter((u): u is User => !!u).sort((a, b) => a.username.localeCompare(b.username));
  return view(
    c,
    `Group ${g.name}`,
    html`<h2>Members</h2>
${members.length ? html`<ul>${members.map((u) => html`<li>${u.username} ${postButton(`${base}/remove`, csrf, 'Remove', { kind: 'secondary', hidden: { username: u.username }, aria: `Remove ${u.username} from ${g.name}` })}</li>`)}</ul>` : html`<p>No members.</p>`}
<form method="post" action="${base}/add">${csrfField(csrf)}
${field({ name: 'username', label: 'Add a member (username or email)', required: true, autocomplete: 'off' })}
<div class="actions"><button type="submit">Add member</button></div></form>
<h2>Delete</h2>
<form method="post" action="${base}/delete">${csrfField(csrf)}
<label><input type="checkbox" name="confirm" value="yes" required> Delete the group ${g.name}</label>
<div class="actions"><button type="submit" class="danger">Delete group</button></div></form>`,
    { error, current: '/admin/groups' },
  );
}

async function groupAction(c: RequestContext, act: (name: string) => Promise<unknown>, notice: Parameters<typeof done>[1], where?: string): Promise<Result> {
  const g = c.directory.groupByName(c.params[0]!);
  if (!g) return notFound(c, 'group');
  try {
    await act(g.name);
  } catch (err) {
    return groupPage(c, userError(err));
  }
  return done(where ?? `/admin/groups/${encodeURIComponent(g.name)}`, notice);
}

// ---- apps ----

function appTitle(c: RequestContext, id: string): string {
  const t = c.directory.app(id)?.manifest.title;
  return typeof t === 'string' && t ? t : id;
}

function accessText(c: RequestContext, access: { userIds: string[]; groupIds: string[] } | null): string {
  if (!access) return 'everyone';
  const users = access.userIds.map((id) => c.directory.userById(id)?.username ?? id);
  const groups = access.groupIds.map((id) => c.directory.groupById(id)?.name ?? id);
  return [users.length ? `users:${users.join(',')}` : '', groups.length ? `groups:${groups.join(',')}` : ''].filter(Boolean).join(' ');
}

function appsPage(c: RequestContext, v: Record<string, string> = {}, error?: string): Result {
  const apps = [...c.directory.apps()].sort((a, b) => a.id.localeCompare(b.id));
  return view(
    c,
    'Apps',
    html`<div class="table" tabindex="0" role="region" aria-label="Table (scrolls sideways on small screens)"><table><thead><tr><th scope="col">App</th><th scope="col">Domain</th><th scope="col">Addons</th><th scope="col">Access</th></tr></thead><tbody>
${apps.map((a) => html`<tr><td><a href="/admin/apps/${encodeURIComponent(a.id)}">${a.id}</a>${a.id === CONSOLE_APP_ID ? html` <span class="tag">built in</span>` : ''}</td><td>${a.domain}</td><td>${Object.keys(a.manifest.addons).join(', ')}</td><td>${accessText(c, a.access)}</td></tr>`)}
</tbody></table></div>
<h2>Install an app</h2>
<form method="post" action="/admin/apps" enctype="multipart/form-data">${csrfField(c.session.record.csrf)}
<label for="f-manifest">CloudronManifest.json</label><input id="f-manifest" name="manifest" type="file" accept="application/json,.json" required>
${field({ name: 'id', label: 'App id', value: v.id, required: true, autocomplete: 'off' })}
${field({ name: 'domain', label: 'Domain', value: v.domain, required: true, autocomplete: 'off', hint: 'e.g. wiki.example.com' })}
${field({ name: 'access', label: 'Access', value: v.access, autocomplete: 'off', hint: 'Empty for everyone, or e.g. "users:alice,bob groups:staff".' })}
${field({ name: 'upstream', label: 'Upstream', value: v.upstream, autocomplete: 'off', hint: 'For the proxyAuth addon: where the gateway sends requests, e.g. http://127.0.0.1:8000.' })}
${field({ name: 'image', label: 'Image', value: v.image, autocomplete: 'off', hint: 'Docker image to run, e.g. registry.example/wiki:1.2 (empty: the manifest’s dockerImage, or no container).' })}
<div class="actions"><button type="submit">Install</button></div></form>`,
    { error, current: '/admin/apps' },
  );
}

async function installFromForm(c: RequestContext): Promise<Result> {
  const v = Object.fromEntries(['id', 'domain', 'access', 'upstream', 'image'].map((k) => [k, c.form.get(k).trim()]));
  const file = c.form.file('manifest');
  if (!file || file.content.length === 0) return appsPage(c, v, 'Choose a CloudronManifest.json file to upload.');
  try {
    const app = await installApp(c.config, c.directory, { manifestText: file.content.toString('utf8'), id: v.id!, domain: v.domain!, access: v.access ? [v.access] : undefined, upstream: v.upstream || undefined, image: v.image || undefined }, appDeployer(c.config));
    c.logger.info({ admin: c.user.username, appId: app.id, image: app.manifest.dockerImage }, 'app installed in the console');
    return done(`/admin/apps/${encodeURIComponent(app.id)}`, 'app-installed');
  } catch (err) {
    return appsPage(c, v, userError(err));
  }
}

const SECRET_NAME = /PASSWORD|SECRET|TOKEN|_KEY$/;

/** Secrets are masked until an admin asks: named secrets whole, a URL's password part only. */
export function maskEnv(name: string, value: string): string {
  if (SECRET_NAME.test(name)) return '••••••••';
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1••••••••@');
}

async function appPage(c: RequestContext, o: { reveal?: boolean; error?: string } = {}): Promise<Result> {
  const app = c.directory.app(c.params[0]!);
  if (!app) return notFound(c, 'app');
  const csrf = c.session.record.csrf;
  const base = `/admin/apps/${encodeURIComponent(app.id)}`;
  const env = appEnv(c.config, c.directory, app.id);
  return view(
    c,
    `App ${appTitle(c, app.id)}`,
    html`<p>Id <code>${app.id}</code> · domain ${app.domain} · access ${accessText(c, app.access)}${app.upstream ? html` · upstream ${app.upstream}` : ''} · installed ${app.createdAt.slice(0, 10)}</p>
<p>Addons: ${Object.keys(app.manifest.addons).join(', ') || 'none'}</p>
<h2>Environment</h2>
${env.length ? html`<div class="table" tabindex="0" role="region" aria-label="Table (scrolls sideways on small screens)"><table><thead><tr><th scope="col">Variable</th><th scope="col">Value</th></tr></thead><tbody>${env.map(([k, val]) => html`<tr><td><code>${k}</code></td><td><code>${o.reveal ? val : maskEnv(k, val)}</code></td></tr>`)}</tbody></table></div>` : html`<p>This app gets no variables.</p>`}
<div class="actions">
${o.reveal ? html`<a href="${base}">Hide secrets</a>` : postButton(`${base}/env`, csrf, 'Show secrets', { kind: 'secondary' })}
${postButton(`${base}/rotate`, csrf, 'Rotate credentials', { kind: 'secondary' })}
${app.id === CONSOLE_APP_ID ? '' : html`<a href="${base}/uninstall">Uninstall…</a>`}
</div>
${app.manifest.addons.tls ? html`<h2>Certificate</h2>
<p>The tls addon's certificate and key, as <code>hearth app cert</code>: a running container is restarted to read them.</p>
<form method="post" action="${base}/cert" enctype="multipart/form-data">${csrfField(csrf)}
<label for="f-cert">Certificate (PEM, chain after it)</label><input id="f-cert" name="cert" type="file" accept=".pem,.crt" required>
<label for="f-key">Private key (PEM)</label><input id="f-key" name="key" type="file" accept=".pem,.key" required>
<div class="actions"><button type="submit" class="secondary">Install certificate</button></div></form>` : ''}
${await runtimeSection(c, app.id)}`,
    { error: o.error, current: '/admin/apps' },
  );
}

function uninstallPage(c: RequestContext, error?: string): Result {
  const app = c.directory.app(c.params[0]!);
  if (!app) return notFound(c, 'app');
  return view(
    c,
    `Uninstall ${app.id}`,
    html`<p>Uninstalling removes the app's credentials, its mailboxes and everything its addons created (databases included). This cannot be undone.</p>
<form method="post" action="/admin/apps/${encodeURIComponent(app.id)}/uninstall">${csrfField(c.session.record.csrf)}
${field({ name: 'confirm', label: `Type the app id (${app.id}) to confirm`, required: true, autocomplete: 'off' })}
<div class="actions"><button type="submit" class="danger">Uninstall</button><a href="/admin/apps/${encodeURIComponent(app.id)}">Cancel</a></div></form>`,
    { error, current: '/admin/apps' },
  );
}

async function uninstall(c: RequestContext): Promise<Result> {
  const app = c.directory.app(c.params[0]!);
  if (!app) return notFound(c, 'app');
  if (app.id === CONSOLE_APP_ID) return uninstallPage(c, 'The console’s own sign-in client cannot be uninstalled from the console.');
  if (c.form.get('confirm').trim() !== app.id) return uninstallPage(c, `Type ${app.id} exactly to confirm.`);
  try {
    await removeAppContainers(c.config, app);
    await uninstallApp(c.config, c.directory, app.id);
  } catch (err) {
    return uninstallPage(c, userError(err));
  }
  c.logger.info({ admin: c.user.username, appId: app.id }, 'app uninstalled in the console');
  return done('/admin/apps', 'app-uninstalled');
}

async function installCert(c: RequestContext): Promise<Result> {
  const app = c.directory.app(c.params[0]!);
  if (!app) return notFound(c, 'app');
  const [cert, key] = [c.form.file('cert'), c.form.file('key')];
  if (!cert?.content.length || !key?.content.length) return appPage(c, { error: 'Choose the certificate file and the key file.' });
  let restarted: boolean;
  try {
    ({ restarted } = await installAppCert(c.config, c.directory, app.id, cert.content.toString('utf8'), key.content.toString('utf8')));
  } catch (err) {
    return appPage(c, { error: userError(err) });
  }
  c.logger.info({ admin: c.user.username, appId: app.id, restarted }, 'app certificate installed in the console');
  return done(`/admin/apps/${encodeURIComponent(app.id)}`, restarted ? 'cert-installed-restarted' : 'cert-installed');
}

async function rotate(c: RequestContext): Promise<Result> {
  const app = c.directory.app(c.params[0]!);
  if (!app) return notFound(c, 'app');
  try {
    await rotateApp(c.config, c.directory, app.id, appDeployer(c.config));
  } catch (err) {
    return appPage(c, { error: userError(err) });
  }
  c.logger.info({ admin: c.user.username, appId: app.id }, 'app credentials rotated in the console');
  return done(`/admin/apps/${encodeURIComponent(app.id)}`, 'app-rotated');
}

// ---- mailboxes ----

async function mailboxesPage(c: RequestContext, v: Record<string, string> = {}, error?: string): Promise<Result> {
  const csrf = c.session.record.csrf;
  const { dkimDnsRecord, dkimZoneLine, signedDomains } = await import('@hearth/smtp/dkim');
  // as `hearth mail dkim <domain>` prints them, for every domain Hearth signs (its key made on first need)
  const dkim = [...signedDomains(c.config, c.directory)].sort().map((domain) => ({ domain, line: dkimZoneLine(dkimDnsRecord(c.config, domain)) }));
  const boxes = [...c.directory.mailboxes()].sort((a, b) => a.address.localeCompare(b.address));
  const owner = (type: string, id: string): string => (type === 'user' ? (c.directory.userById(id)?.username ?? id) : `app ${id}`);
  return view(
    c,
    'Mailboxes',
    html`<div class="table" tabindex="0" role="region" aria-label="Table (scrolls sideways on small screens)"><table><thead><tr><th scope="col">Address</th><th scope="col">Owner</th><th scope="col"><span class="hint">Action</span></th></tr></thead><tbody>
${boxes.map((m) => html`<tr><td>${m.address}</td><td>${owner(m.ownerType, m.ownerId)}</td><td>${m.ownerType === 'user' ? postButton('/admin/mailboxes/delete', csrf, 'Delete', { kind: 'secondary', hidden: { address: m.address }, aria: `Delete mailbox ${m.address}` }) : html`<span class="hint">removed with the app</span>`}</td></tr>`)}
</tbody></table></div>
<h2>Add a mailbox</h2>
<form method="post" action="/admin/mailboxes">${csrfField(csrf)}
${field({ name: 'address', label: 'Address', type: 'email', value: v.address, required: true, autocomplete: 'off' })}
${field({ name: 'owner', label: 'Owner (username)', value: v.owner, required: true, autocomplete: 'off' })}
<div class="actions"><button type="submit">Add mailbox</button></div></form>
<h2 id="dkim">DKIM DNS records</h2>
<p>Publish one TXT record per domain so receivers can check what Hearth signs (the same lines as <code>hearth mail dkim &lt;domain&gt;</code>).</p>
<div class="table" tabindex="0" role="region" aria-labelledby="dkim"><table><thead><tr><th scope="col">Domain</th><th scope="col">Record</th></tr></thead><tbody>
${dkim.map((r) => html`<tr><td>${r.domain}</td><td><code>${r.line}</code></td></tr>`)}
</tbody></table></div>`,
    { error, current: '/admin/mailboxes' },
  );
}

async function addMailbox(c: RequestContext): Promise<Result> {
  const v = { address: c.form.get('address').trim(), owner: c.form.get('owner').trim() };
  try {
    await c.directory.addMailbox(v.address, v.owner);
  } catch (err) {
    return mailboxesPage(c, v, userError(err));
  }
  return done('/admin/mailboxes', 'mailbox-added');
}

async function deleteMailbox(c: RequestContext): Promise<Result> {
  const box = c.directory.mailbox(c.form.get('address'));
  if (!box || box.ownerType !== 'user') return mailboxesPage(c, {}, 'No such user mailbox.');
  await c.directory.deleteMailbox(box.address);
  return done('/admin/mailboxes', 'mailbox-deleted');
}

// ---- mail queue ----

async function queuePage(c: RequestContext, error?: string): Promise<Result> {
  const { listQueue } = await import('@hearth/smtp/queue-admin');
  const csrf = c.session.record.csrf;
  const queue = await listQueue(c.config);
  return view(
    c,
    'Mail queue',
    html`${queue.length
      ? html`<div class="table" tabindex="0" role="region" aria-label="Table (scrolls sideways on small screens)"><table><thead><tr><th scope="col">Id</th><th scope="col">From</th><th scope="col">Arrived</th><th scope="col">Recipients</th><th scope="col"><span class="hint">Actions</span></th></tr></thead><tbody>
${queue.map(
  (m) => html`<tr><td><code>${m.id}</code></td><td>${m.from || '<>'}</td><td>${m.arrivedAt}</td><td><ul>${m.recipients.map((r) => html`<li>${r.address}: ${r.status}, ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}${r.lastError ? html` — ${r.lastError}` : ''}</li>`)}</ul></td>
<td>${postButton('/admin/queue/retry', csrf, 'Retry', { kind: 'secondary', hidden: { id: m.id }, aria: `Retry ${m.id}` })} ${postButton('/admin/queue/delete', csrf, 'Delete', { kind: 'danger', hidden: { id: m.id }, aria: `Delete ${m.id}` })}</td></tr>`,
)}
</tbody></table></div>
<div class="actions">${postButton('/admin/queue/retry', csrf, 'Retry all now', { kind: 'secondary' })}</div>`
      : html`<p>The queue is empty.</p>`}`,
    { error, current: '/admin/queue' },
  );
}

async function queueAction(c: RequestContext, action: 'retry' | 'delete'): Promise<Result> {
  const { retryQueued, deleteQueued, QueueAdminError } = await import('@hearth/smtp/queue-admin');
  const id = c.form.get('id').trim();
  try {
    if (action === 'retry') await retryQueued(c.config, id || undefined);
    else await deleteQueued(c.config, id);
  } catch (err) {
    if (err instanceof QueueAdminError) return queuePage(c, err.message);
    throw err;
  }
  c.logger.info({ admin: c.user.username, id: id || 'all', action }, 'mail queue changed in the console');
  return done('/admin/queue', action === 'retry' ? 'queue-retry' : 'queue-deleted');
}

// ---- audit log ----

const RESULTS = ['ok', 'failed'] as const;
const PROTOCOLS = ['ldap', 'smtp', 'imap', 'pop3', 'oidc', 'proxyauth', 'turn', 'sieve', 'cli', 'console'] as const;

async function auditPage(c: RequestContext): Promise<Result> {
  const p = c.url.searchParams;
  const user = (p.get('user') ?? '').trim().slice(0, 256);
  const app = (p.get('app') ?? '').trim().slice(0, 64);
  const protocol = PROTOCOLS.find((x) => x === p.get('protocol'));
  const limit = Math.min(1000, Math.max(1, Number(p.get('limit')) || 100));
  const [since, until] = (['since', 'until'] as const).map((k) => (p.get(k) ?? '').trim().slice(0, 64));
  const result = RESULTS.find((x) => x === p.get('result'));
  const bad = [since, until].find((t) => t && !auditInstant(t));
  const events = bad
    ? []
    : await c.directory.store.listAudit({ username: user || undefined, protocol, appId: app || undefined, since: since ? auditInstant(since)! : undefined, until: until ? auditInstant(until)! : undefined, ok: result ? result === 'ok' : undefined, limit });
  return view(
    c,
    'Audit log',
    html`<form method="get" action="/admin/audit">
${field({ name: 'user', label: 'User', value: user, autocomplete: 'off' })}
<label for="f-protocol">Protocol</label><select id="f-protocol" name="protocol"><option value="">any</option>${PROTOCOLS.map((x) => html`<option${x === protocol ? html` selected` : ''}>${x}</option>`)}</select>
<label for="f-result">Result</label><select id="f-result" name="result"><option value="">any</option>${RESULTS.map((x) => html`<option${x === result ? html` selected` : ''}>${x}</option>`)}</select>
${field({ name: 'app', label: 'App id', value: app, autocomplete: 'off' })}
${field({ name: 'since', label: 'From (UTC, e.g. 2026-12-08T09:30)', value: since, autocomplete: 'off' })}
${field({ name: 'until', label: 'Before (UTC)', value: until, autocomplete: 'off' })}
${field({ name: 'limit', label: 'At most', type: 'number', value: String(limit), attrs: 'min="1" max="1000"' })}
<div class="actions"><button type="submit">Filter</button></div></form>
<div class="table" tabindex="0" role="region" aria-label="Table (scrolls sideways on small screens)"><table><thead><tr><th scope="col">When</th><th scope="col">User</th><th scope="col">Protocol</th><th scope="col">App</th><th scope="col">From</th><th scope="col">Result</th></tr></thead><tbody>
${events.map((e) => html`<tr><td>${e.at}</td><td>${e.username ?? ''}</td><td>${e.protocol}</td><td>${e.appId ?? ''}</td><td>${e.remote ?? ''}</td><td>${e.ok ? 'ok' : html`<span class="tag off">failed</span>`}${e.detail ? ` ${e.detail}` : ''}</td></tr>`)}
</tbody></table></div>`,
    { current: '/admin/audit', error: bad ? `"${bad}" is not a time: give a date, or a date and time (UTC unless a zone is given).` : undefined },
  );
}

async function statusPage(c: RequestContext): Promise<Result> {
  const rows = await serviceStatus(c.config, c.settings.probeHost);
  return view(
    c,
    'Service status',
    html`<div class="table" tabindex="0" role="region" aria-label="Table (scrolls sideways on small screens)"><table><thead><tr><th scope="col">Service</th><th scope="col">State</th><th scope="col">Restarts</th><th scope="col">Version</th><th scope="col">Endpoints</th></tr></thead><tbody>
${rows.map((r) => html`<tr><td>${r.name}</td><td>${r.up ? 'up' : html`<span class="tag off">down</span>`}</td><td>${r.restarts ?? '—'}</td><td>${r.version}</td><td>${r.endpoints.join(', ')}</td></tr>`)}
</tbody></table></div>
<p class="hint">Up means every port of the service accepts connections now. Restarts are counted by <code>npm start</code>'s supervisor since it started.</p>
<h2>Sign-in signing keys</h2>
<p>A new generation of the keys the OIDC provider signs tokens with, as <code>hearth oidc rotate-keys</code>: running providers take it up within seconds, and tokens signed with the previous keys stay valid.</p>
<div class="actions">${postButton('/admin/status/rotate-keys', c.session.record.csrf, 'Rotate signing keys', { kind: 'secondary' })}</div>`,
    { current: '/admin/status' },
  );
}

async function rotateSigningKeys(c: RequestContext): Promise<Result> {
  const { rotateKeys } = await import('@hearth/oidc/keys');
  const r = await rotateKeys(c.config, c.directory.store);
  c.logger.info({ admin: c.user.username, generation: r.version, kids: r.kids }, 'OIDC signing keys rotated in the console');
  return done('/admin/status', 'keys-rotated');
}

const U = '([^/]+)';
export const adminRoutes: Route[] = [
  { method: 'GET', path: /^\/admin\/?$/, admin: true, handler: () => ({ redirect: '/admin/users' }) },
  { method: 'GET', path: /^\/admin\/users$/, admin: true, handler: usersPage },
  { method: 'GET', path: /^\/admin\/users\/new$/, admin: true, handler: (c) => newUserForm(c) },
  { method: 'POST', path: /^\/admin\/users\/new$/, admin: true, handler: createUser },
  { method: 'GET', path: new RegExp(`^/admin/users/${U}$`), admin: true, handler: (c) => userPage(c) },
  { method: 'POST', path: new RegExp(`^/admin/users/${U}$`), admin: true, handler: saveUser },
  { method: 'POST', path: new RegExp(`^/admin/users/${U}/password$`), admin: true, handler: (c) => userAction(c, (u) => c.directory.setPassword(u.id, c.form.get('password')), 'user-password') },
  {
    method: 'POST',
    path: new RegExp(`^/admin/users/${U}/disable$`),
    admin: true,
    handler: (c) =>
      userAction(
        c,
        async (u) => {
          refuseSelf(c, u);
          await c.directory.setActive(u.id, false);
        },
        'user-disabled',
      ),
  },
  { method: 'POST', path: new RegExp(`^/admin/users/${U}/enable$`), admin: true, handler: (c) => userAction(c, (u) => c.directory.setActive(u.id, true), 'user-enabled') },
  {
    method: 'POST',
    path: new RegExp(`^/admin/users/${U}/sign-out$`),
    admin: true,
    handler: (c) =>
      userAction(
        c,
        async (u) => {
          await signOutEverywhere(c, u.id);
          await c.directory.audit({ username: u.username, protocol: 'console', remote: c.remote, ok: true, detail: `signed out everywhere by ${c.user.username}` });
        },
        'user-signed-out',
      ),
  },
  { method: 'POST', path: new RegExp(`^/admin/users/${U}/totp$`), admin: true, handler: enableTotpFor },
  { method: 'POST', path: new RegExp(`^/admin/users/${U}/reset-2fa$`), admin: true, handler: (c) =>
      userAction(
        c,
        async (u) => {
          await c.directory.store.deletePasskeysOf(u.id);
          await c.directory.disableTotp(u.id);
        },
        'user-2fa',
      ),
  },
  {
    method: 'POST',
    path: new RegExp(`^/admin/users/${U}/delete$`),
    admin: true,
    handler: (c) =>
      userAction(
        c,
        async (u) => {
          refuseSelf(c, u);
          if (c.form.get('confirm') !== 'yes') throw new Refusal('tick the box to confirm the deletion');
          await c.directory.deleteUser(u.id);
        },
        'user-deleted',
        '/admin/users',
      ),
  },
  { method: 'GET', path: /^\/admin\/groups$/, admin: true, handler: (c) => groupsPage(c) },
  { method: 'POST', path: /^\/admin\/groups$/, admin: true, handler: createGroup },
  { method: 'GET', path: new RegExp(`^/admin/groups/${U}$`), admin: true, handler: (c) => groupPage(c) },
  { method: 'POST', path: new RegExp(`^/admin/groups/${U}/add$`), admin: true, handler: (c) => groupAction(c, (g) => c.directory.addMember(g, c.form.get('username').trim()), 'member-added') },
  { method: 'POST', path: new RegExp(`^/admin/groups/${U}/remove$`), admin: true, handler: (c) => groupAction(c, (g) => c.directory.removeMember(g, c.form.get('username').trim()), 'member-removed') },
  {
    method: 'POST',
    path: new RegExp(`^/admin/groups/${U}/delete$`),
    admin: true,
    handler: (c) =>
      groupAction(
        c,
        async (g) => {
          if (c.form.get('confirm') !== 'yes') throw new Refusal('tick the box to confirm the deletion');
          await c.directory.deleteGroup(g);
        },
        'group-deleted',
        '/admin/groups',
      ),
  },
  { method: 'GET', path: /^\/admin\/apps$/, admin: true, handler: (c) => appsPage(c) },
  { method: 'POST', path: /^\/admin\/apps$/, admin: true, handler: installFromForm },
  { method: 'GET', path: new RegExp(`^/admin/apps/${U}$`), admin: true, handler: (c) => appPage(c) },
  { method: 'POST', path: new RegExp(`^/admin/apps/${U}/env$`), admin: true, handler: (c) => appPage(c, { reveal: true }) },
  { method: 'POST', path: new RegExp(`^/admin/apps/${U}/rotate$`), admin: true, handler: rotate },
  { method: 'POST', path: new RegExp(`^/admin/apps/${U}/cert$`), admin: true, handler: installCert },
  ...(['start', 'stop', 'restart'] as const).map(
    (verb): Route => ({
      method: 'POST',
      path: new RegExp(`^/admin/apps/${U}/${verb}$`),
      admin: true,
      handler: async (c) => {
        if (!c.directory.app(c.params[0]!)) return notFound(c, 'app');
        try {
          await runAppAction(c, verb);
        } catch (err) {
          return appPage(c, { error: userError(err) });
        }
        return done(`/admin/apps/${encodeURIComponent(c.params[0]!)}`, `app-${verb}`);
      },
    }),
  ),
  { method: 'GET', path: new RegExp(`^/admin/apps/${U}/uninstall$`), admin: true, handler: (c) => uninstallPage(c) },
  { method: 'POST', path: new RegExp(`^/admin/apps/${U}/uninstall$`), admin: true, handler: uninstall },
  { method: 'GET', path: /^\/admin\/mailboxes$/, admin: true, handler: (c) => mailboxesPage(c) },
  { method: 'POST', path: /^\/admin\/mailboxes$/, admin: true, handler: addMailbox },
  { method: 'POST', path: /^\/admin\/mailboxes\/delete$/, admin: true, handler: deleteMailbox },
  { method: 'GET', path: /^\/admin\/queue$/, admin: true, handler: (c) => queuePage(c) },
  { method: 'POST', path: /^\/admin\/queue\/retry$/, admin: true, handler: (c) => queueAction(c, 'retry') },
  { method: 'POST', path: /^\/admin\/queue\/delete$/, admin: true, handler: (c) => queueAction(c, 'delete') },
  { method: 'GET', path: /^\/admin\/audit$/, admin: true, handler: auditPage },
  { method: 'GET', path: /^\/admin\/status$/, admin: true, handler: statusPage },
  { method: 'POST', path: /^\/admin\/status\/rotate-keys$/, admin: true, handler: rotateSigningKeys },
];
