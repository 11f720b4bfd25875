/**
 * Go reference-time layouts (`2006-01-02T15:04:05Z07:00`), as Packer's `isotime` formats them.
 */
/** The default `isotime` layout. */
export const RFC3339 = '2006-01-02T15:04:05Z07:00';
/** English month names, January first. @internal */
export const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
/** English day names, Sunday first (as `getUTCDay`). @internal */
export const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const pad = (n: number, width: number, fill = '0'): string => String(n).padStart(width, fill);

/**
 * Formats a time in UTC with a Go reference-time layout (`2006-01-02T15:04:05Z07:00`), as
 * Packer's `isotime` does. Supports every std token of Go's `time` package; text that is not a
 * token is copied.
 * @internal
 */
export function formatGoTime(date: Date, layout: string): string {
  const y = date.getUTCFullYear();
  const mo = date.getUTCMonth();
  const d = date.getUTCDate();
  const h = date.getUTCHours();
  const mi = date.getUTCMinutes();
  const s = date.getUTCSeconds();
  const ms = date.getUTCMilliseconds();
  const yday = Math.floor((Date.UTC(y, mo, d) - Date.UTC(y, 0, 1)) / 86_400_000) + 1;
  const h12 = h % 12 === 0 ? 12 : h % 12;
  // Longest tokens first where one is a prefix of another.
  const tokens: readonly [string, () => string][] = [
    ['January', () => MONTHS[mo]!],
    ['Jan', () => MONTHS[mo]!.slice(0, 3)],
    ['Monday', () => DAYS[date.getUTCDay()]!],
    ['Mon', () => DAYS[date.getUTCDay()]!.slice(0, 3)],
    ['MST', () => 'UTC'],
    ['2006', () => pad(y, 4)],
    ['002', () => pad(yday, 3)],
    ['__2', () => pad(yday, 3, ' ')],
    ['_2006', () => `_${pad(y, 4)}`],
    ['_2', () => pad(d, 2, ' ')],
    ['01', () => pad(mo + 1, 2)],
    ['02', () => pad(d, 2)],
    ['03', () => pad(h12, 2)],
    ['04', () => pad(mi, 2)],
    ['05', () => pad(s, 2)],
    ['06', () => pad(y % 100, 2)],
    ['15', () => pad(h, 2)],
    ['1', () => String(mo + 1)],
    ['2', () => String(d)],
    ['3', () => String(h12)],
    ['4', () => String(mi)],
    ['5', () => String(s)],
    ['PM', () => (h >= 12 ? 'PM' : 'AM')],
    ['pm', () => (h >= 12 ? 'pm' : 'am')],
    ['Z07:00:00', () => 'Z'],
    ['Z070000', () => 'Z'],
    ['Z07:00', () => 'Z'],
    ['Z0700', () => 'Z'],
    ['Z07', () => 'Z'],
    ['-07:00:00', () => '+00:00:00'],
    ['-070000', () => '+000000'],
    ['-07:00', () => '+00:00'],
    ['-0700', () => '+0000'],
    ['-07', () => '+00'],
  ];
  let out = '';
  let i = 0;
  outer: while (i < layout.length) {
    const c = layout[i]!;
    // Fractional seconds: "." or "," then a run of 0s or 9s not followed by a digit.
    if ((c === '.' || c === ',') && (layout[i + 1] === '0' || layout[i + 1] === '9')) {
      const digit = layout[i + 1]!;
      let j = i + 1;
      while (layout[j] === digit) j++;
      if (!/[0-9]/.test(layout[j] ?? '')) {
        const width = j - i - 1;
        const frac = (pad(ms, 3) + '000000').slice(0, Math.min(width, 9)).padEnd(width, '0');
        if (digit === '0') out += c + frac;
        else {
          const trimmed = frac.replace(/0+$/, '');
          if (trimmed) out += c + trimmed;
        }
        i = j;
        continue;
      }
    }
    for (const [token, value] of tokens) {
      if (!layout.startsWith(token, i)) continue;
      out += value();
      i += token.length;
      continue outer;
    }
    out += c;
    i++;
  }
  return out;
}
