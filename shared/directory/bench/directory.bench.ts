/**
 * Directory benchmark (`npm run bench`): 10,000 users on each backend; lookups/s by
 * username, email and id from the in-memory view, view reload time, and argon2id
 * verifications/s at the test cost and at the default cost.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '@hearth/config';
import { Directory, PasswordHasher, type User } from '@hearth/directory';
import { testEnv, writeBenchmarkSection } from '@hearth/testkit';

const USERS = 10_000;
const LOOKUPS = 1_000_000;

function rate(n: number, ms: number): number {
  return Math.round((n / ms) * 1000);
}

async function verifications(hasher: PasswordHasher, hash: string, seconds: number, concurrency: number): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let n = 0;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        if (!(await hasher.verify(hash, 'bench password'))) throw new Error('verification failed');
        n++;
      }
    }),
  );
  return rate(n, Date.now() - start);
}

const rows: string[] = [];
for (const backend of ['sqlite', 'postgres'] as const) {
  const t = await testEnv({ backend });
  const d = await Directory.open(t.config);
  const hash = await d.hasher.hash('bench password');
  const users: Omit<User, 'uidNumber'>[] = Array.from({ length: USERS }, (_, i) => ({
    id: `uid-${randomUUID()}`,
    username: `user${i}`,
    email: `user${i}@example.test`,
    fallbackEmail: null,
    displayName: `User ${i}`,
    role: 'user',
    active: true,
    passwordHash: hash,
    totpSecret: null,
    createdAt: new Date().toISOString(),
  }));
  let t0 = Date.now();
  for (let i = 0; i < users.length; i += 200) await Promise.all(users.slice(i, i + 200).map((u) => d.store.createUser(u)));
  const insertMs = Date.now() - t0;
  t0 = performance.now();
  await d.refresh();
  const reloadMs = performance.now() - t0;

  const measure = (find: (i: number) => User | undefined): number => {
    const start = performance.now();
    for (let i = 0; i < LOOKUPS; i++) if (!find(i % USERS)) throw new Error('lookup failed');
    return rate(LOOKUPS, performance.now() - start);
  };
  const byUsername = measure((i) => d.findUser(`user${i}`));
  const byEmail = measure((i) => d.findUser(`user${i}@example.test`));
  const byId = measure((i) => d.findUser(users[i]!.id));
  const verifyTest = await verifications(d.hasher, hash, 3, os.availableParallelism() * 2);
  rows.push(`| ${backend} | ${byUsername.toLocaleString('en')} | ${byEmail.toLocaleString('en')} | ${byId.toLocaleString('en')} | ${reloadMs.toFixed(0)} | ${insertMs} | ${verifyTest} |`);
  console.log(backend, { byUsername, byEmail, byId, reloadMs: Math.round(reloadMs), insertMs, verifyTest });
  await d.close();
  await t.cleanup();
}

// Verification cost at the production default (HEARTH_ARGON2_* unset).
const defaults = loadConfig({}).argon2;
const prodHasher = new PasswordHasher(defaults);
const prodHash = await prodHasher.hash('bench password');
const verifyDefault = await verifications(prodHasher, prodHash, 5, os.availableParallelism() * 2);
const testCost = loadConfig().argon2;
console.log({ verifyDefault, defaults, testCost });

const body = `Run ${new Date().toISOString().slice(0, 10)} on ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}.
${USERS.toLocaleString('en')} users; ${LOOKUPS.toLocaleString('en')} lookups per figure from the in-memory view (what every daemon reads).

| backend | lookups/s by username | by email | by id | view reload (ms) | insert ${USERS.toLocaleString('en')} (ms) | argon2id verifications/s (m=${testCost.memoryCost} KiB, t=${testCost.timeCost}) |
|---|---|---|---|---|---|---|
${rows.join('\n')}

argon2id verifications/s at the default cost (m=${defaults.memoryCost} KiB, t=${defaults.timeCost}, p=${defaults.parallelism}): **${verifyDefault}**, on libuv's thread pool (${os.availableParallelism() * 2} concurrent).
The cost is tunable with \`HEARTH_ARGON2_MEMORY_KIB\`, \`HEARTH_ARGON2_TIME_COST\` and \`HEARTH_ARGON2_PARALLELISM\`; existing hashes keep their own parameters.
Aim: lookups ≥ 200k/s from the in-memory view.`;
writeBenchmarkSection('Directory', body);
console.log('written to BENCHMARKS.md');
