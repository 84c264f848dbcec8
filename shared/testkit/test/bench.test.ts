import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { cpuSeconds, memoryMiB, percentile, treeCpuSeconds } from '../src/index.ts';

describe('bench helpers', () => {
  it('percentile picks the nearest-rank value, NaN for no values', () => {
    const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert.equal(percentile(ten, 50), 6);
    assert.equal(percentile(ten, 99), 10);
    assert.equal(percentile(ten, 0), 1);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it('reads CPU seconds and resident memory from /proc, children included on request', async () => {
    // a child that has burnt some CPU and then idles, so its share is fixed while we look
    const child = spawn(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 300); process.stdout.write("x"); setInterval(() => {}, 1000);'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await once(child.stdout, 'data');
      const childCpu = cpuSeconds(child.pid!);
      assert.ok(childCpu > 0, `child cpu ${childCpu}`);
      const own = cpuSeconds(process.pid);
      const withChildren = cpuSeconds(process.pid, true);
      // whole clock ticks compared as such: 0.48 + 0.34 is 0.8200000000000001 in floating point
      const ticks = (seconds: number): number => Math.round(seconds * 1000);
      assert.ok(ticks(withChildren) >= ticks(own) + ticks(childCpu), `${withChildren} < ${own} + ${childCpu}`);
      const mem = memoryMiB(process.pid);
      assert.ok(mem.rss > 1 && mem.peak >= mem.rss, JSON.stringify(mem));
    } finally {
      child.kill();
    }
    assert.throws(() => cpuSeconds(2 ** 30));
  });

  it('counts a process tree, children that have exited and been reaped included', async () => {
    const before = treeCpuSeconds(process.pid);
    // a child that uses 300 ms of CPU (however long that takes on a loaded machine) and exits;
    // node reaps it, so its time moves to our cutime
    const burn = 'const u = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; }; while (u() < 300);';
    const child = spawn(process.execPath, ['-e', burn], { stdio: 'ignore' });
    await once(child, 'exit');
    const after = treeCpuSeconds(process.pid);
    assert.ok(after - before >= 0.28, `tree grew by ${after - before} s only`);
    assert.ok(after >= cpuSeconds(process.pid), 'the tree holds at least the process itself');
    assert.throws(() => treeCpuSeconds(2 ** 30));
  });
});
