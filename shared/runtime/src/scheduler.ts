import type Docker from 'dockerode';
import type { Logger } from '@hearth/log';
import type { AppRuntime } from './apps.ts';
import { isDue, parseSchedule } from './cron.ts';
import { engineMessage, engineStatus } from './engine.ts';
import { LABEL_APP, LABEL_DUE, LABEL_ROLE, LABEL_TASK } from './names.ts';
import { taskContainerSpec, type RuntimeApp } from './spec.ts';

export interface Task {
  name: string;
  schedule: string;
  command: string;
}

export interface ScheduledApp {
  app: RuntimeApp;
  tasks: Task[];
}

export interface TaskRun {
  task: string;
  container: string;
  /** the minute the run was due */
  due: string;
  state: string;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
}

/** One name per task and due minute: a second scheduler (or one restarted within the minute) cannot start the same run twice. */
export function taskContainerName(appId: string, task: string, due: Date): string {
  return `hearth-task-${appId}-${task}-${due.toISOString().slice(0, 16).replace(/[-:T]/g, '')}`;
}

const zeroTime = (t: string): string | null => (t && !t.startsWith('0001-') ? t : null);

/** The runs of the app's tasks Docker still has (the last finished one and any running one per task), newest first. */
export async function taskRuns(runtime: AppRuntime, appId: string, task?: string): Promise<TaskRun[]> {
  const filters = { label: [`${LABEL_APP}=${appId}`, `${LABEL_ROLE}=task`, ...(task ? [`${LABEL_TASK}=${task}`] : [])] };
  const list = await runtime.engine.listContainers({ all: true, filters });
  const runs: TaskRun[] = [];
  for (const c of list) {
    const info = await runtime.engine
      .getContainer(c.Id)
      .inspect()
      .catch(() => null);
    if (!info) continue;
    runs.push({
      task: info.Config.Labels[LABEL_TASK] ?? '',
      container: info.Name.replace(/^\//, ''),
      due: info.Config.Labels[LABEL_DUE] ?? '',
      state: info.State.Status,
      startedAt: zeroTime(info.State.StartedAt),
      finishedAt: info.State.Running ? null : zeroTime(info.State.FinishedAt),
      exitCode: info.State.Running ? null : info.State.ExitCode,
    });
  }
  return runs.sort((a, b) => b.due.localeCompare(a.due));
}

/**
 * Starts the scheduler addon's tasks at the start of each minute they are due: `sh -c <command>`
 * in a container from the app's image, with its env, /tmp, /run and /app/data. A run still going
 * when the next one is due is left alone until it has run for the grace period (the seed's 30
 * minutes), then killed and replaced. Task containers outlive this process; their names make
 * each due minute start at most once, across restarts and several schedulers.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly runtime: AppRuntime,
    private readonly apps: () => ScheduledApp[],
    private readonly logger: Logger,
    private readonly graceSeconds: number,
  ) {}

  start(): void {
    this.arm();
  }

  private arm(): void {
    if (this.closed) return;
    const now = Date.now();
    const next = Math.floor(now / 60_000) * 60_000 + 60_000;
    // A little after the minute starts, so a slow timer never lands in the minute before.
    this.timer = setTimeout(() => void this.tick(new Date(next)), next - now + 50);
  }

  /** Runs every task due in `minute`; exported for the daemon's tests and the bench. */
  async tick(minute: Date): Promise<void> {
    this.arm();
    let apps: ScheduledApp[];
    try {
      apps = this.apps();
    } catch (err) {
      this.logger.error({ err }, 'scheduler: could not read the apps');
      return;
    }
    const due = apps.flatMap(({ app, tasks }) =>
      tasks.filter((t) => {
        try {
          return isDue(parseSchedule(t.schedule), minute);
        } catch (err) {
          this.logger.error({ app: app.id, task: t.name, err: (err as Error).message }, 'scheduler: bad schedule; task skipped');
          return false;
        }
      }).map((task) => ({ app, task })),
    );
    await Promise.all(due.map(({ app, task }) => this.run(app, task, minute)));
  }

  private async run(app: RuntimeApp, task: Task, due: Date): Promise<void> {
    const log = { app: app.id, task: task.name, due: due.toISOString() };
    const engine = this.runtime.engine;
    try {
      const previous = await engine.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${app.id}`, `${LABEL_ROLE}=task`, `${LABEL_TASK}=${task.name}`] } });
      const finished: Docker.ContainerInfo[] = [];
      for (const c of previous.sort((a, b) => b.Created - a.Created)) {
        if (c.Labels[LABEL_DUE] === due.toISOString()) return; // this minute's run is already there
        if (c.State !== 'running') {
          finished.push(c);
          continue;
        }
        const info = await engine.getContainer(c.Id).inspect();
        const ranSeconds = (due.getTime() - Date.parse(info.State.StartedAt)) / 1000;
        if (ranSeconds < this.graceSeconds) {
          this.logger.warn({ ...log, running: c.Names[0], ranSeconds: Math.round(ranSeconds) }, 'scheduler: the previous run is still going and within its grace period; not starting another');
          return;
        }
        await engine.getContainer(c.Id).kill().catch((err) => {
          if (engineStatus(err) !== 409) throw err; // 409: it ended meanwhile
        });
        this.logger.warn({ ...log, killed: c.Names[0], ranSeconds: Math.round(ranSeconds), graceSeconds: this.graceSeconds }, 'scheduler: killed the previous run, still going after its grace period');
        finished.unshift(c);
      }
      // Keep the newest finished run (its exit code and log are what `app status`/`app logs --task` show until this one ends).
      for (const c of finished.slice(1)) await engine.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
      const name = taskContainerName(app.id, task.name, due);
      let container: Docker.Container;
      try {
        container = await engine.createContainer(taskContainerSpec(this.runtime.dataDir, this.runtime.settings, app, { ...task, due, containerName: name }));
      } catch (err) {
        if (engineStatus(err) === 409) return; // another scheduler started this run
        throw err;
      }
      await container.start();
      this.logger.info({ ...log, container: name }, 'scheduler: task started');
      void container
        .wait()
        .then((r: { StatusCode: number }) => this.logger[r.StatusCode === 0 ? 'info' : 'warn']({ ...log, container: name, exitCode: r.StatusCode }, 'scheduler: task finished'))
        .catch(() => {});
    } catch (err) {
      this.logger.error({ ...log, err: engineMessage(err) }, 'scheduler: could not start the task');
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
