/**
 * The whole device suite (test/device: every op's conformance cases, the program executor with graphs,
 * device-side operand errors named by op) on the `ascend` backend, over the stand-in ACL runtime
 * (test/ascend/native/fake_acl.cc) and the kernels built against the shim, both in build/native/ascend/fake/.
 *
 * The runtime is found through LD_LIBRARY_PATH, which only a new process reads, so this runs vitest on
 * test/device in a child process with that environment, `-t "\[ascend\]"`, and reads its JSON report.
 * FAKE_ACL_DEVICES=2: the all_reduce case opens a group of two ascend devices (to see HCCL refused).
 * What this cannot check: the real ACL's behaviour and the bisheng-built kernels.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ascendToolDir } from './tools.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const fakeDir = join(ascendToolDir(), 'fake');
const kernels = join(fakeDir, 'libupdraft_ascendc_kernels.so');
const addon = join(ascendToolDir(), '..', 'Release', 'updraft.node');
const skipReason = existsSync(join(fakeDir, 'libascendcl.so')) ? null : `${fakeDir}/libascendcl.so not built (npm run build:native)`;

interface AssertionResult {
  fullName: string;
  status: 'passed' | 'failed' | 'skipped' | 'pending' | 'todo' | 'disabled';
  failureMessages: string[];
}
interface JsonReport {
  numFailedTests: number;
  numPassedTests: number;
  testResults: { name: string; assertionResults: AssertionResult[] }[];
}

/** Runs vitest on test/device for the ascend backend over the stand-in runtime; its JSON report. */
function runDeviceSuiteOnAscend(): { report: JsonReport; exitCode: number; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'updraft-ascend-device-suite-'));
  try {
    const reportPath = join(dir, 'report.json');
    const env: Record<string, string> = {};
    // Not the parent's vitest worker variables (the child is a vitest of its own), nor its runtime path.
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !key.startsWith('VITEST') && key !== 'LD_LIBRARY_PATH' && key !== 'UPDRAFT_ASCEND_KERNELS') env[key] = value;
    }
    Object.assign(env, {
      LD_LIBRARY_PATH: fakeDir,
      UPDRAFT_ASCEND_KERNELS: kernels,
      UPDRAFT_NATIVE_ADDON: resolve(addon),
      FAKE_ACL_DEVICES: '2',
    });
    const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
    let exitCode = 0;
    let output = '';
    try {
      output = execFileSync(
        process.execPath,
        [vitest, 'run', 'test/device', '-t', '\\[ascend\\]', '--reporter=json', `--outputFile=${reportPath}`],
        { cwd: REPO_ROOT, env, encoding: 'utf-8', timeout: 540_000, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 },
      );
    } catch (error) {
      const e = error as { status?: number | null; stdout?: string; stderr?: string; message: string };
      exitCode = e.status ?? -1;
      output = `${e.stdout ?? ''}\n${e.stderr ?? ''}\n${e.message}`;
    }
    if (!existsSync(reportPath)) throw new Error(`vitest wrote no report (exit ${exitCode}):\n${output.slice(-4000)}`);
    return { report: JSON.parse(readFileSync(reportPath, 'utf-8')) as JsonReport, exitCode, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(skipReason !== null)(`device suite on the ascend backend over a stand-in ACL runtime${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  it('passes every case of test/device [ascend], the op naming of device-side errors included', { timeout: 600_000 }, () => {
    const { report, exitCode } = runDeviceSuiteOnAscend();
    const results = report.testResults.flatMap((file) => file.assertionResults);
    const ascend = results.filter((r) => r.fullName.includes('[ascend]'));
    const failed = ascend.filter((r) => r.status === 'failed').map((r) => `${r.fullName}: ${r.failureMessages.join('\n').slice(0, 600)}`);
    expect(failed).toEqual([]);
    expect(report.numFailedTests).toBe(0);
    expect(exitCode).toBe(0);
    // The backend opened (a backend that does not open leaves one skipped "skipped: <why>" case), and
    // every case ran: none skipped, the all_reduce one on two devices included.
    const skipped = ascend.filter((r) => r.status !== 'passed').map((r) => `${r.fullName} (${r.status})`);
    expect(skipped).toEqual([]);
    expect(ascend.length).toBeGreaterThanOrEqual(150);
    const named = ascend.filter((r) => /rejects a step whose op fails, naming the op/.test(r.fullName));
    expect(named.map((r) => r.status)).toEqual(['passed']);
    const ownCommunicator = ascend.filter((r) => /the backend's own communicator, 2 ranks/.test(r.fullName));
    expect(ownCommunicator.map((r) => r.status)).toEqual(['passed']);
  });
});

if (skipReason !== null) it.skip(`device suite on the ascend backend over a stand-in ACL runtime — ${skipReason}`, () => {});
