/**
 * The library's wait policies scaled for an emulated EC2 whose transitions are sped up. A module of
 * its own, without the test EC2's fixtures, so that a build process (bench/vs-packer's child) can
 * use it without loading the SDK at start-up.
 */
import { DEFAULT_WAIT_POLICIES } from '../../src/aws/poll-policy.js';
import type { PollingConfig, WaitKind } from '../../src/types.js';

/**
 * The library's default wait policies divided by `scale`, as `polling.waits`.
 * @internal
 */
export function scaledPolling(scale: number): PollingConfig {
  const waits: Partial<
    Record<WaitKind, { timeoutMs: number; minDelayMs: number; maxDelayMs: number; firstDelayMs?: number }>
  > = {};
  for (const [kind, policy] of Object.entries(DEFAULT_WAIT_POLICIES) as [
    WaitKind,
    (typeof DEFAULT_WAIT_POLICIES)[WaitKind],
  ][]) {
    waits[kind] = {
      timeoutMs: Math.ceil(policy.timeoutMs / scale),
      minDelayMs: Math.max(1, Math.round(policy.minDelayMs / scale)),
      maxDelayMs: Math.max(1, Math.round(policy.maxDelayMs / scale)),
    };
  }
  return { waits };
}

/**
 * The same, with the copies' hold-off (`firstDelayMs`) scaled too. The build configuration's
 * schema does not know `firstDelayMs` yet, so only the primitives (copyToRegions) take this one.
 * @internal
 */
export function scaledPollingWithHoldOff(scale: number): PollingConfig {
  const base = scaledPolling(scale);
  const waits = { ...base.waits };
  for (const [kind, policy] of Object.entries(DEFAULT_WAIT_POLICIES) as [
    WaitKind,
    (typeof DEFAULT_WAIT_POLICIES)[WaitKind],
  ][]) {
    waits[kind] = { ...waits[kind], firstDelayMs: Math.round(policy.firstDelayMs / scale) };
  }
  return { waits };
}
