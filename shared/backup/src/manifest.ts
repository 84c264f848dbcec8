import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { LATEST_SCHEMA_VERSION } from '@hearth/directory';
import { BackupError } from './errors.ts';

/** What a snapshot holds, written at its root as hearth/manifest.json. */
export const snapshotManifestSchema = z.object({
  format: z.literal(1),
  hearthVersion: z.string(),
  schemaVersion: z.number().int(),
  createdAt: z.string(),
  /** "platform": everything; otherwise the one app id it holds */
  scope: z.union([z.literal('platform'), z.object({ app: z.string() })]),
  /** the directory store's kind (platform snapshots) */
  store: z.enum(['sqlite', 'postgres']).nullable(),
  apps: z.array(z.string()),
  /** parts that could not be taken, e.g. "app x: mongodb (no mongodump)" */
  skipped: z.array(z.string()),
});
export type SnapshotManifest = z.infer<typeof snapshotManifestSchema>;

const ROOT_PACKAGE = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../package.json');

export function hearthVersion(): string {
  return (JSON.parse(fs.readFileSync(ROOT_PACKAGE, 'utf8')) as { version: string }).version;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => Number(x) || 0);
  const pb = b.split(/[.+-]/).map((x) => Number(x) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length, 3); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

/** Reads a restored manifest and refuses one written by a newer Hearth. */
export function readSnapshotManifest(file: string): SnapshotManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new BackupError('this snapshot was not made by hearth backup (no hearth/manifest.json)');
  }
  const parsed = snapshotManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const v = (raw as { hearthVersion?: unknown }).hearthVersion;
    throw new BackupError(`this snapshot's manifest is not one this Hearth reads${typeof v === 'string' ? ` (written by Hearth ${v})` : ''}`);
  }
  const m = parsed.data;
  if (compareVersions(m.hearthVersion, hearthVersion()) > 0 || m.schemaVersion > LATEST_SCHEMA_VERSION) {
    throw new BackupError(
      `the snapshot was written by a newer Hearth (${m.hearthVersion}, schema ${m.schemaVersion}; this is ${hearthVersion()}, schema ${LATEST_SCHEMA_VERSION}); upgrade Hearth before restoring it`,
    );
  }
  return m;
}
