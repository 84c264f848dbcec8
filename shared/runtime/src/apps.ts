import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type Docker from 'dockerode';
import type { HearthConfig } from '@hearth/config';
import { markCertApplied } from './certs.ts';
import { connectEngine, engineMessage, EngineError, engineReachable, engineStatus, type Engine } from './engine.ts';
import { appContainerName, appDataDir, appVolumeName, labelFilter, LABEL_APP, LABEL_ROLE } from './names.ts';
import { runtimeSettings, type RuntimeSettings } from './settings.ts';
import { appContainerSpec, type RuntimeApp } from './spec.ts';

/** What `deploy` did, to keep (commit, once the app is stored) or take back (undo). */
export interface Deployment {
  commit(): Promise<void>;
  undo(): Promise<void>;
}

export interface AppState {
  container: string;
  /** created, running, restarting, exited, ... or "absent" */
  state: string;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  restarts: number;
  image: string;
}

export type Health = 'healthy' | 'unhealthy' | 'no health check';

/** Runs apps' containers on one Docker engine. */
export class AppRuntime {
  readonly engine: Engine;

  readonly dataDir: string;

  constructor(
    readonly config: HearthConfig,
    readonly settings: RuntimeSettings = runtimeSettings(),
  ) {
    this.dataDir = config.dataDir;
    this.engine = connectEngine(config.dockerHost);
  }

  reachable(): Promise<boolean> {
    return engineReachable(this.engine);
  }

  /** Fails with one line naming HEARTH_DOCKER_HOST when the engine does not answer. */
  async requireEngine(): Promise<void> {
    if (!(await this.reachable())) throw new EngineError(`cannot reach the Docker engine at ${this.config.dockerHost} (set HEARTH_DOCKER_HOST)`);
  }

  private async ensureImage(ref: string): Promise<void> {
    try {
      await this.engine.getImage(ref).inspect();
      return;
    } catch (err) {
      if (engineStatus(err) !== 404) throw new EngineError(`image ${ref}: ${engineMessage(err)}`);
    }
    try {
      const stream = await this.engine.pull(ref);
      await new Promise<void>((resolve, reject) => this.engine.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())));
    } catch (err) {
      throw new EngineError(`image ${ref} is not on the Docker engine and could not be pulled: ${engineMessage(err)}`);
    }
  }

  private async container(name: string): Promise<Docker.ContainerInspectInfo | null> {
    try {
      return await this.engine.getContainer(name).inspect();
    } catch (err) {
      if (engineStatus(err) === 404) return null;
      throw new EngineError(`container ${name}: ${engineMessage(err)}`);
    }
  }

  /**
   * Creates and starts the app's container (replacing the one it has, which is set aside
   * until commit), with /app/data created empty on first run and /tmp, /run as its volumes.
   * Everything this call created is removed again by undo, and the old container comes back.
   */
  async deploy(app: RuntimeApp): Promise<Deployment> {
    await this.requireEngine();
    await this.ensureImage(app.image);
    const undo: (() => Promise<unknown>)[] = [];
    const rollback = async (): Promise<void> => {
      for (const step of undo.reverse()) await step().catch(() => {});
    };
    try {
      const data = appDataDir(this.dataDir, app.id);
      if (!fs.existsSync(data)) {
        const created = fs.mkdirSync(data, { recursive: true, mode: 0o750 });
        if (created) undo.push(async () => fs.rmSync(created, { recursive: true, force: true }));
      }
      const volumes = (await this.engine.listVolumes({ filters: labelFilter(app.id) })).Volumes ?? [];
      for (const dir of ['tmp', 'run'] as const) {
        const name = appVolumeName(app.id, dir);
        if (volumes.some((v) => v.Name === name)) continue;
        await this.engine.createVolume({ Name: name, Labels: { [LABEL_APP]: app.id } });
        undo.push(() => this.engine.getVolume(name).remove());
      }
      const name = appContainerName(app.id);
      const previous = await this.container(name);
      let aside: Docker.Container | null = null;
      if (previous) {
        // Set aside rather than removed: a failed deploy puts it back as it was.
        const asideName = `${name}-previous-${randomBytes(3).toString('hex')}`;
        aside = this.engine.getContainer(previous.Id);
        await aside.rename({ name: asideName });
        undo.push(() => aside!.rename({ name }));
        if (previous.State.Running) {
          await aside.stop({ t: 10 });
          undo.push(() => aside!.start());
        }
      }
      const container = await this.engine.createContainer(appContainerSpec(this.dataDir, this.settings, app));
      undo.push(() => container.remove({ force: true }));
      await container.start();
      if (app.tls) markCertApplied(this.dataDir, app.id);
      return {
        commit: async () => {
          await aside?.remove({ force: true }).catch(() => {});
        },
        undo: rollback,
      };
    } catch (err) {
      await rollback();
      throw err instanceof EngineError ? err : new EngineError(`could not start app ${app.id}: ${engineMessage(err)}`);
    }
  }

  private async existing(appId: string): Promise<Docker.Container> {
    const name = appContainerName(appId);
    if (!(await this.container(name))) throw new EngineError(`app ${appId} has no container; run hearth app install again`);
    return this.engine.getContainer(name);
  }

  async start(appId: string): Promise<void> {
    const c = await this.existing(appId);
    await c.start().catch((err) => {
      if (engineStatus(err) !== 304) throw new EngineError(`could not start app ${appId}: ${engineMessage(err)}`);
    });
  }

  async stop(appId: string): Promise<void> {
    const c = await this.existing(appId);
    await c.stop({ t: 10 }).catch((err) => {
      if (engineStatus(err) !== 304) throw new EngineError(`could not stop app ${appId}: ${engineMessage(err)}`);
    });
  }

  async restart(appId: string): Promise<void> {
    const c = await this.existing(appId);
    await c.restart({ t: 10 }).catch((err) => {
      throw new EngineError(`could not restart app ${appId}: ${engineMessage(err)}`);
    });
  }

  async state(appId: string): Promise<AppState> {
    const name = appContainerName(appId);
    const info = await this.container(name);
    if (!info) return { container: name, state: 'absent', startedAt: null, finishedAt: null, exitCode: null, restarts: 0, image: '' };
    const zero = (t: string): string | null => (t && !t.startsWith('0001-') ? t : null);
    return {
      container: name,
      state: info.State.Status,
      startedAt: zero(info.State.StartedAt),
      finishedAt: info.State.Running ? null : zero(info.State.FinishedAt),
      exitCode: info.State.Running ? null : info.State.ExitCode,
      restarts: info.RestartCount,
      image: info.Config.Image,
    };
  }

  /** GET http://127.0.0.1:<httpPort><healthCheckPath> from the host: any answer below 400 is healthy. */
  health(app: Pick<RuntimeApp, 'httpPort' | 'healthCheckPath'>, timeoutMs = 3000): Promise<Health> {
    if (!app.httpPort || !app.healthCheckPath) return Promise.resolve('no health check');
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: app.httpPort, path: app.healthCheckPath, timeout: timeoutMs }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 500) < 400 ? 'healthy' : 'unhealthy');
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve('unhealthy'));
    });
  }

  /** Every container labelled with the app (its own, its tasks', the ones it created) and its volumes. */
  async remove(appId: string): Promise<void> {
    await this.requireEngine();
    const containers = await this.engine.listContainers({ all: true, filters: labelFilter(appId) });
    const failures: string[] = [];
    for (const c of containers) {
      await this.engine
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch((err) => {
          if (engineStatus(err) !== 404) failures.push(`container ${c.Names[0] ?? c.Id}: ${engineMessage(err)}`);
        });
    }
    const volumes = (await this.engine.listVolumes({ filters: labelFilter(appId) })).Volumes ?? [];
    for (const v of volumes) {
      await this.engine
        .getVolume(v.Name)
        .remove()
        .catch((err) => {
          if (engineStatus(err) !== 404) failures.push(`volume ${v.Name}: ${engineMessage(err)}`);
        });
    }
    if (failures.length) throw new EngineError(`could not remove ${failures.join('; ')}`);
  }

  /** Containers with the app's label and the given role (tasks: newest first). */
  async containersOf(appId: string, role: 'app' | 'task' | 'child'): Promise<Docker.ContainerInfo[]> {
    const list = await this.engine.listContainers({ all: true, filters: labelFilter(appId, role) });
    return list.filter((c) => c.Labels[LABEL_ROLE] === role).sort((a, b) => b.Created - a.Created);
  }
}
