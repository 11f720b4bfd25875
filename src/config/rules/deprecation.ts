/**
 * When the AMI is deprecated: EC2's EnableImageDeprecation limits, checked before anything is
 * created, so a build does not make an image only to fail on its last call.
 */
import { type Add, type Loose, asList, isString } from './helpers.js';

/** EnableImageDeprecation's upper limit for a private AMI, in years from now (EC2 API reference). */
export const DEPRECATE_MAX_YEARS = 10;
/** The limit for a public AMI (`amiGroups: ["all"]`), in years from its creation. */
export const DEPRECATE_MAX_YEARS_PUBLIC = 2;

function yearsFrom(now: number, years: number): Date {
  const d = new Date(now);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d;
}

function timeOf(x: unknown): number {
  if (x instanceof Date) return x.getTime();
  return isString(x) ? Date.parse(x) : Number.NaN;
}

/**
 * `deprecateAt` must be in the future and within EC2's limit: 10 years from now, 2 years for a
 * public AMI. The image is created after validation, so checking against now is the strict side of
 * the public limit (counted from the creation date).
 */
export function deprecationRules(c: Loose, add: Add, now: number = Date.now()): void {
  const at = timeOf(c.deprecateAt);
  // An unparsable value has its own issue already.
  if (Number.isNaN(at)) return;
  const iso = new Date(at).toISOString();
  if (at <= now) {
    add(
      'deprecateAt',
      c.deprecateAt,
      `${iso} is not in the future (now is ${new Date(now).toISOString()}) and EnableImageDeprecation rejects a past time; set a later time or remove deprecateAt`,
    );
    return;
  }
  const isPublic = asList(c.amiGroups).includes('all');
  const years = isPublic ? DEPRECATE_MAX_YEARS_PUBLIC : DEPRECATE_MAX_YEARS;
  const limit = yearsFrom(now, years);
  if (at > limit.getTime()) {
    add(
      'deprecateAt',
      c.deprecateAt,
      `${iso} is more than ${years} years ahead, beyond EC2's limit for ${isPublic ? 'a public AMI (amiGroups ["all"]: 2 years from its creation)' : 'an AMI (10 years from now)'}; set a time no later than ${limit.toISOString()}`,
    );
  }
}
