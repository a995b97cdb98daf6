// The cgroup v2 enforcer (production hosts) against a folder laid out as the unified hierarchy: this
// machine kind has cgroup v1, whose enforcer the instance and scaling tests drive for real.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuQuotaUs, PIDS_MAX, tryCgroupV2 } from './limits.js';

const MB = 1024 * 1024;

describe('cgroup v2 enforcer', () => {
  let root: string;
  let sleeper: ChildProcess;
  const read = (...parts: string[]) => readFileSync(join(root, ...parts), 'utf8');
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'nimbus-cgv2-'));
    writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
    sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  });
  after(() => {
    sleeper.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('enables memory, pids and cpu for its own parent group and says so', () => {
    const e = tryCgroupV2('nimbus-test-1', root)!;
    assert.equal(e.kind, 'cgroup-v2');
    assert.equal(read('cgroup.subtree_control'), '+memory +pids +cpu');
    assert.equal(read('nimbus-test-1', 'cgroup.subtree_control'), '+memory +pids +cpu');
    assert.match(e.description, /memory\.max = memorySize, no swap, pids\.max = 256, cpu\.max = memorySize \/ 1769 MB per CPU/);
  });

  it('puts an instance in a group of its own: memory.max = memorySize, no swap, whole-group OOM, pids.max, then its CPU quota', () => {
    const e = tryCgroupV2('nimbus-test-2', root)!;
    const limits = e.attach(sleeper.pid!, 'i1', 1024);
    assert.equal(read('nimbus-test-2', 'i1', 'memory.max'), String(1024 * MB));
    assert.equal(read('nimbus-test-2', 'i1', 'memory.swap.max'), '0');
    assert.equal(read('nimbus-test-2', 'i1', 'memory.oom.group'), '1');
    assert.equal(read('nimbus-test-2', 'i1', 'pids.max'), String(PIDS_MAX));
    assert.equal(read('nimbus-test-2', 'i1', 'cgroup.procs'), String(sleeper.pid));
    limits.startCpuQuota?.();
    assert.equal(read('nimbus-test-2', 'i1', 'cpu.max'), `${cpuQuotaUs(1024)} 100000`);
    assert.equal(cpuQuotaUs(1024), 57886, '1024 MB is 0.58 of a CPU, as on Lambda');
    // What the kernel reports back.
    assert.equal(limits.wasOomKilled(), false);
    writeFileSync(join(root, 'nimbus-test-2', 'i1', 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    assert.equal(limits.wasOomKilled(), true);
    writeFileSync(join(root, 'nimbus-test-2', 'i1', 'memory.peak'), String(300 * MB + 1));
    assert.equal(limits.peakMemoryMB?.(), 301);
    limits.killAll();
    assert.equal(read('nimbus-test-2', 'i1', 'cgroup.kill'), '1');
  });

  it('prepares a pooled process in a small group and claims it for a function by writing its memory size', () => {
    const e = tryCgroupV2('nimbus-test-3', root)!;
    const prepared = e.prepare!(sleeper.pid!, 'pool-1');
    assert.equal(read('nimbus-test-3', 'pool-1', 'cgroup.procs'), String(sleeper.pid));
    prepared.claim(2048);
    assert.equal(read('nimbus-test-3', 'pool-1', 'memory.max'), String(2048 * MB));
  });

  it('is not used where the memory controller is missing', () => {
    const bare = join(root, 'no-memory');
    mkdirSync(bare);
    writeFileSync(join(bare, 'cgroup.controllers'), 'cpu pids\n');
    assert.equal(tryCgroupV2('nimbus-test-4', bare), null);
  });
});
