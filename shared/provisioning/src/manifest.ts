import { z } from 'zod';
import type { Manifest } from '@hearth/directory';

/**
 * CloudronManifest.json as `hearth app install` accepts it. Top-level fields Cloudron
 * defines are allowed (and kept); anything else is a mistake worth refusing. Addon
 * options are checked by each addon's own schema (addons/*.ts).
 */
const KNOWN_FIELDS = [
  'id', 'title', 'author', 'description', 'tagline', 'version', 'upstreamVersion', 'manifestVersion', 'healthCheckPath',
  'httpPort', 'httpPorts', 'tcpPorts', 'udpPorts', 'addons', 'website', 'contactEmail', 'icon', 'tags', 'mediaLinks',
  'changelog', 'postInstallMessage', 'minBoxVersion', 'maxBoxVersion', 'targetBoxVersion', 'memoryLimit', 'optionalSso',
  'configurePath', 'documentationUrl', 'forumUrl', 'packagerName', 'packagerUrl', 'capabilities', 'multiDomain',
  'checklist', 'logPaths', 'runtimeDirs', 'persistentDirs', 'backupCommand', 'restoreCommand', 'dockerImage',
] as const;

/** A Docker image reference: [registry[:port]/]name[:tag][@sha256:digest], as `docker pull` takes it. */
export const imageRefSchema = z
  .string()
  .max(255)
  .regex(/^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/, 'image must be a Docker image reference such as registry.example/app:1.0');

export const manifestSchema = z
  .object({
    id: z.string().min(1).max(200).optional(),
    title: z.string().max(200).optional(),
    version: z.string().max(50).optional(),
    manifestVersion: z.number().int().min(1).max(2).optional(),
    httpPort: z.number().int().min(1).max(65535).optional(),
    dockerImage: imageRefSchema.optional(),
    /** bytes, as Cloudron's manifest has it */
    memoryLimit: z.number().int().min(6 * 1024 * 1024, 'memoryLimit must be at least 6 MiB (6291456 bytes)').optional(),
    healthCheckPath: z.string().regex(/^\/[\x21-\x7e]*$/, 'healthCheckPath must be a path such as /healthz').optional(),
    addons: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  })
  .catchall(z.unknown())
  .superRefine((m, ctx) => {
    for (const key of Object.keys(m)) {
      if (!(KNOWN_FIELDS as readonly string[]).includes(key)) ctx.addIssue({ code: 'custom', message: `unknown manifest field: ${key}`, path: [key] });
    }
  });

export class ManifestError extends Error {}

/** Parses manifest text; the error names the first problem in one line. */
export function parseManifest(text: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(`manifest is not valid JSON: ${(err as Error).message}`);
  }
  const r = manifestSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const where = issue.path.length ? ` (${issue.path.join('.')})` : '';
    throw new ManifestError(issue.code === 'custom' ? issue.message : `invalid manifest${where}: ${issue.message}`);
  }
  return r.data as Manifest;
}
