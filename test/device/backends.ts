/**
 * The backends the device suites run on: every known backend, each either available here or
 * skipped with the reason (not compiled in, or no device / runtime on this machine).
 */
import { describe, it } from 'vitest';
import { probeBackends } from '../../src/device/device.ts';

/** describe(name, body) for each available backend; one skipped test stating why for the rest. */
export function describeEachBackend(title: string, body: (backend: string) => void): void {
  for (const backend of probeBackends()) {
    describe(`${title} [${backend.name}]`, () => {
      if (backend.available) body(backend.name);
      else it.skip(`skipped: ${backend.reason ?? 'unavailable'}`, () => {});
    });
  }
}
