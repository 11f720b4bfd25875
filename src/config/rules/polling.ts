/**
 * Polling: per-wait delays must be ordered.
 */
import { type Add, type Loose, asRecord, isInt } from './helpers.js';

/** Each wait's minDelayMs must not exceed its maxDelayMs. */
export function pollingRules(c: Loose, add: Add): void {
  const waits = asRecord(asRecord(c.polling).waits);
  for (const [kind, raw] of Object.entries(waits)) {
    const w = asRecord(raw);
    if (isInt(w.minDelayMs) && isInt(w.maxDelayMs) && w.minDelayMs > w.maxDelayMs) {
      add(
        `polling.waits.${kind}.minDelayMs`,
        w.minDelayMs,
        `must not exceed maxDelayMs (${w.maxDelayMs}); lower it or raise maxDelayMs`,
      );
    }
  }
}
