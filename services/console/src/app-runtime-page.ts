import { Writable } from 'node:stream';
import { appLogContainer, appStatus, appTasks, engineRuntime, runnableApp, taskLogContainer } from '@hearth/provisioning';
import { containerLogs, EngineError } from '@hearth/runtime';
import { html, postButton, type Html } from './pages/layout.ts';
import type { RequestContext } from './routes.ts';

/**
 * The app page's container part: `hearth app status` (with the scheduled tasks), `start`, `stop`,
 * `restart` and `logs --tail N [--task <name>]` through the same @hearth/provisioning and
 * @hearth/runtime calls.
 */

const DEFAULT_LINES = 100;
const MAX_LINES = 5000;

/** The log lines the page asks for (`?lines=N`), within bounds. */
function logLines(c: RequestContext): number {
  const n = Number(c.url.searchParams.get('lines') ?? DEFAULT_LINES);
  return Number.isInteger(n) && n > 0 ? Math.min(n, MAX_LINES) : DEFAULT_LINES;
}

/** A container's last `tail` lines, stdout and stderr in the order the engine kept them. */
async function lastLines(runtime: Awaited<ReturnType<typeof engineRuntime>>, container: string, tail: number): Promise<string> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await containerLogs(runtime, container, { follow: false, tail }, { stdout: sink, stderr: sink });
  return Buffer.concat(chunks).toString('utf8');
}

/** Status, actions and log of the app's container; an app without an image or an unreachable engine says so. */
export async function runtimeSection(c: RequestContext, appId: string): Promise<Html> {
  if (!c.directory.app(appId)?.manifest.dockerImage) return html`<h2>Container</h2><p>This app has no image: Hearth does not run it (install it with an image to have it run here).</p>`;
  try {
    const app = runnableApp(c.config, c.directory, appId);
    const runtime = await engineRuntime(c.config);
    const s = await appStatus(runtime, app);
    const lines = logLines(c);
    const tasks = await appTasks(runtime, c.directory, appId);
    const task = c.url.searchParams.get('task') ?? '';
    let log: string;
    try {
      // A task's log is its last run's output, as `hearth app logs --task`.
      log = task ? await lastLines(runtime, await taskLogContainer(runtime, c.directory, appId, task), lines) : s.state === 'absent' ? '' : await lastLines(runtime, await appLogContainer(runtime, appId), lines);
    } catch (err) {
      if (!(err instanceof EngineError) || !task) throw err;
      log = err.message;
    }
    const base = `/admin/apps/${encodeURIComponent(appId)}`;
    const csrf = c.session.record.csrf;
    const rows: [string, unknown][] = [['Container', s.container], ['Image', s.image], ['State', s.state], ['Health', s.health], ['Restarts', s.restarts], ['Started', s.startedAt ?? '—'], ['Finished', s.finishedAt ?? '—'], ['Exit code', s.exitCode ?? '—']];
    return html`<h2>Container</h2>
<div class="table" tabindex="0" role="region" aria-label="Container status"><table><tbody>${rows.map(([k, v]) => html`<tr><th scope="row">${k}</th><td>${String(v)}</td></tr>`)}</tbody></table></div>
<div class="actions">
${postButton(`${base}/start`, csrf, 'Start', { kind: 'secondary' })}
${postButton(`${base}/stop`, csrf, 'Stop', { kind: 'secondary' })}
${postButton(`${base}/restart`, csrf, 'Restart', { kind: 'secondary' })}
</div>
<p>A shell in the container: <code>hearth app exec ${appId} -- sh</code> on the host (a web page cannot hold a terminal).</p>
${tasks.length ? html`<h2>Scheduled tasks</h2>
<div class="table" tabindex="0" role="region" aria-label="Scheduled tasks"><table><thead><tr><th scope="col">Task</th><th scope="col">Schedule</th><th scope="col">Command</th><th scope="col">Last run</th><th scope="col">State</th><th scope="col">Exit code</th></tr></thead><tbody>
${tasks.map((t) => html`<tr><td>${t.name}</td><td><code>${t.schedule}</code></td><td><code>${t.command}</code></td><td>${t.lastRun?.due ?? 'never'}</td><td>${t.lastRun?.state ?? '—'}</td><td>${t.lastRun?.exitCode ?? '—'}</td></tr>`)}
</tbody></table></div>` : ''}
<h2 id="log-title">Log</h2>
<form method="get" action="${base}">${tasks.length ? html`<label for="f-task">Whose log</label><select id="f-task" name="task"><option value="">The app</option>${tasks.map((t) => html`<option value="${t.name}"${t.name === task ? html` selected` : ''}>Task ${t.name} (its last run)</option>`)}</select>` : ''}<label for="f-lines">Last lines</label><input id="f-lines" name="lines" type="number" min="1" max="${MAX_LINES}" value="${lines}"><div class="actions"><button type="submit" class="secondary">Show</button></div></form>
<pre class="log" tabindex="0" role="region" aria-labelledby="log-title">${log || '(empty)'}</pre>`;
  } catch (err) {
    if (err instanceof EngineError) return html`<h2>Container</h2><p role="alert">${err.message}</p>`;
    throw err;
  }
}

/** Start, stop or restart the app's container, as `hearth app start|stop|restart`; errors are one line for the page. */
export async function runAppAction(c: RequestContext, verb: 'start' | 'stop' | 'restart'): Promise<void> {
  const app = runnableApp(c.config, c.directory, c.params[0]!);
  await (await engineRuntime(c.config))[verb](app.id);
  c.logger.info({ admin: c.user.username, appId: app.id }, `app ${verb} in the console`);
}
