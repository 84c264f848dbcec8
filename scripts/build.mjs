#!/usr/bin/env node
// `npm run build`: compiles each service to plain JavaScript in its own dist/ folder with
// esbuild: every src/main.ts (and the supervisor's healthcheck) bundled with the shared/
// libraries it imports, third-party packages left as imports from node_modules, ESM with
// code splitting (the CLI loads each command group on demand), and source maps, so
// `node --enable-source-maps` points stack traces at the .ts lines.
// Usage: node scripts/build.mjs [services/<name> ...]   (default: every service)
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const args = process.argv.slice(2);
const packages = (args.length ? args.map((a) => path.resolve(a)) : fs.readdirSync(path.join(root, 'services')).map((d) => path.join(root, 'services', d))).filter((dir) =>
  fs.existsSync(path.join(dir, 'src', 'main.ts')),
);

/** Entry points per service: its main, plus the supervisor's container healthcheck and daemon thread. */
function entries(dir) {
  return ['main.ts', 'healthcheck.ts', 'thread.ts'].map((f) => path.join(dir, 'src', f)).filter((f) => fs.existsSync(f) && (f.endsWith('main.ts') || path.basename(dir) === 'supervisor'));
}

/** Workspace code is bundled; every other package stays an import resolved from node_modules at run time. */
const thirdPartyExternal = {
  name: 'third-party-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@hearth/') ? undefined : { path: a.path, external: true }));
  },
};

/**
 * A bundled file no longer sits where its source did, so `import.meta.url` (used to find files
 * beside the sources: shared/web/static, the root package.json, the repository) is replaced by
 * the source file's own URL, expressed relative to the output folder.
 */
function sourceLocation(outdir) {
  return {
    name: 'source-location',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (a) => {
        if (a.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const text = await fs.promises.readFile(a.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        const rel = path.relative(outdir, a.path).split(path.sep).join('/');
        return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'ts' };
      });
    },
  };
}

/** Writes each file under a temporary name and renames it, so a process starting meanwhile never reads half a file. */
function writeAtomically(files, outdir) {
  const written = new Set();
  for (const f of files) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    fs.mkdirSync(path.dirname(f.path), { recursive: true });
    fs.writeFileSync(tmp, f.contents);
    fs.renameSync(tmp, f.path);
    written.add(f.path);
  }
  // files of an earlier build that this one no longer has (old chunk names)
  for (const dir of [outdir]) {
    for (const e of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
      const p = path.join(dir, e.name);
      if (e.isFile() && !written.has(p) && !e.name.endsWith('.tmp')) fs.rmSync(p, { force: true });
    }
  }
}

const started = Date.now();
await Promise.all(
  packages.map(async (dir) => {
    const outdir = path.join(dir, 'dist');
    const result = await build({
      entryPoints: entries(dir),
      outdir,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20.19',
      sourcemap: 'linked',
      sourcesContent: false,
      // chunks beside the entry points: the import.meta.url rewrite assumes every output file is in outdir
      chunkNames: '[name]-[hash]',
      write: false,
      logLevel: 'warning',
      plugins: [thirdPartyExternal, sourceLocation(outdir)],
    });
    writeAtomically(result.outputFiles, outdir);
  }),
);
if (!process.env.npm_lifecycle_event?.startsWith('pre') && process.stdout.isTTY) {
  process.stdout.write(`built ${packages.length} services in ${Date.now() - started} ms\n`);
}
