// @ts-check
import { performance } from 'node:perf_hooks';

/**
 * Wall-clock milliseconds with a sub-ms fraction. Every process on one host gets the same reading
 * (timeOrigin is wall time, the offset is monotonic), so a parent can compare its own readings
 * with the timestamps its children report (the cluster probes, the benchmark children).
 * @returns {number}
 */
export function wallMs() {
  return performance.timeOrigin + performance.now();
}
