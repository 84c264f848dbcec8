import type { HearthConfig } from '@hearth/config';
import type { App, Directory } from '@hearth/directory';
import { AppRuntime, EngineError, markCertApplied, runtimeApp, taskRuns, writeAppCert, type Health, type RuntimeApp, type TaskRun } from '@hearth/runtime';
import { appEnv, requireApp, type AppDeployer } from './apps.ts';

/** What `hearth app …` and the console's app pages share: the app as the engine runs it. */

/** Creates the app's container for install and rotate (installApp and rotateApp call it before storing the app). */
export function appDeployer(config: HearthConfig): AppDeployer {
  return {
    async deploy(app, env) {
      return new AppRuntime(config).deploy(runtimeApp(app, env)!);
    },
  };
}

/** Uninstall's first step: the app's containers and volumes go before its row, so a failure leaves the app installed. */
export async function removeAppContainers(config: HearthConfig, app: App): Promise<void> {
  const runtime = new AppRuntime(config);
  // An app without an image has no containers unless the engine says otherwise; no engine is no error then.
  if (!app.manifest.dockerImage && !(await runtime.reachable())) return;
  await runtime.remove(app.id);
}

/** The installed app with its variables, ready for the engine; an app without an image is a one-line error. */
export function runnableApp(config: HearthConfig, directory: Directory, id: string): RuntimeApp {
  const app = requireApp(directory, id);
  const r = runtimeApp(app, appEnv(config, directory, id));
  if (!r) throw new EngineError(`app ${id} has no image; install it with --image <ref> (or dockerImage in its manifest) to run it`);
  return r;
}

/** The engine, or a one-line error when it cannot be reached. */
export async function engineRuntime(config: HearthConfig): Promise<AppRuntime> {
  const runtime = new AppRuntime(config);
  await runtime.requireEngine();
  return runtime;
}

export interface AppStatus {
  id: string;
  image: string;
  container: string;
  state: string;
  health: Health | 'not running';
  restarts: number;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
}

/** The app container's state and, when it runs, its health check's answer. */
export async function appStatus(runtime: AppRuntime, app: RuntimeApp): Promise<AppStatus> {
  const state = await runtime.state(app.id);
  const health = state.state === 'running' ? await runtime.health(app) : 'not running';
  return { id: app.id, image: app.image, container: state.container, state: state.state, health, restarts: state.restarts, startedAt: state.startedAt, finishedAt: state.finishedAt, exitCode: state.exitCode };
}

/** The name of the app's container, whose log `app logs` shows; none is a one-line error. */
export async function appLogContainer(runtime: AppRuntime, appId: string): Promise<string> {
  const state = await runtime.state(appId);
  if (state.state === 'absent') throw new EngineError(`app ${appId} has no container; run hearth app install again`);
  return state.container;
}

export interface AppTask {
  name: string;
  schedule: string;
  command: string;
  lastRun: Omit<TaskRun, 'task'> | null;
}

/** The scheduler addon's tasks of an app, as its manifest names them. */
function tasksOf(directory: Directory, id: string): Record<string, { schedule: string; command: string }> {
  return (requireApp(directory, id).manifest.addons.scheduler ?? {}) as Record<string, { schedule: string; command: string }>;
}

/** The app's scheduled tasks, each with its last run (`hearth app status` and the console's app page). */
export async function appTasks(runtime: AppRuntime, directory: Directory, appId: string): Promise<AppTask[]> {
  const runs = await taskRuns(runtime, appId);
  return Object.entries(tasksOf(directory, appId)).map(([name, t]) => {
    const last = runs.find((r) => r.task === name);
    return { name, schedule: t.schedule, command: t.command, lastRun: last ? { due: last.due, container: last.container, state: last.state, startedAt: last.startedAt, finishedAt: last.finishedAt, exitCode: last.exitCode } : null };
  });
}

/** The container whose output is a task's log: its last run's (`hearth app logs --task`); no such task or no run yet is a one-line error. */
export async function taskLogContainer(runtime: AppRuntime, directory: Directory, appId: string, task: string): Promise<string> {
  if (!Object.hasOwn(tasksOf(directory, appId), task)) throw new EngineError(`app ${appId} has no task ${task}`);
  const last = (await taskRuns(runtime, appId, task))[0];
  if (!last) throw new EngineError(`task ${task} of app ${appId} has not run yet`);
  return last.container;
}

/**
 * `hearth app cert`: the tls addon's certificate and key (checked to be a pair) replace the app's;
 * a running container is restarted to read them. Answers whether it was.
 */
export async function installAppCert(config: HearthConfig, directory: Directory, id: string, certPem: string, keyPem: string): Promise<{ restarted: boolean }> {
  const stored = requireApp(directory, id);
  if (!stored.manifest.addons.tls) throw new EngineError(`app ${stored.id} does not have the tls addon`);
  writeAppCert(config.dataDir, stored.id, certPem, keyPem);
  const app = runtimeApp(stored, []);
  const runtime = new AppRuntime(config);
  if (!app || !(await runtime.reachable()) || (await runtime.state(app.id)).state !== 'running') return { restarted: false };
  await runtime.restart(app.id);
  markCertApplied(config.dataDir, app.id);
  return { restarted: true };
}
