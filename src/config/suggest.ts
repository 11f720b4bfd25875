/**
 * "Did you mean" suggestions for misspelled option and template names.
 */

/**
 * Levenshtein edit distance (insert, delete, substitute), case-sensitive.
 * @internal
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

const normalize = (s: string): string => s.toLowerCase().replace(/[_-]/g, '');

/**
 * The closest candidate to `input`, or undefined when none is close enough. Case and `_`/`-`
 * differences count as exact (`aminame` → `amiName`, `ami-name` → `ami_name`); a prefix of exactly
 * one candidate (5+ characters) finds it; otherwise the edit distance may be at most a third of
 * the input's length (at least 1, at most 3).
 * @internal
 */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  const norm = normalize(input);
  const exact = candidates.find((c) => normalize(c) === norm);
  if (exact !== undefined) return exact;
  // A truncated name ("nvme_device" for "nvme_device_path") when only one option starts with it.
  if (norm.length >= 5) {
    const longer = candidates.filter((c) => normalize(c).startsWith(norm));
    if (longer.length === 1) return longer[0];
  }
  const limit = Math.min(3, Math.max(1, Math.floor(input.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(norm, normalize(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
