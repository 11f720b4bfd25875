/**
 * The formats of AWS identifiers and names that options take.
 */
import { show } from './format.js';

/** AWS region names: `us-east-1`, `us-gov-west-1`, `cn-northwest-1`, `eusc-de-east-1`. @internal */
export const REGION_PATTERN = /^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$/;
const KEY_ID = '(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})';
const ALIAS = 'alias/[a-zA-Z0-9:/_-]+';
/**
 * KMS key references EC2 accepts: key id, multi-Region key id (`mrk-`), `alias/name`, or the ARN
 * of a key or alias in any partition (aws, aws-us-gov, aws-cn, aws-iso*).
 */
export const KMS_KEY_PATTERN = new RegExp(
  `^(?:${KEY_ID}|${ALIAS}|arn:aws(?:-[a-z]+)*:kms:[a-z]{2,4}(?:-[a-z]+)+-\\d{1,2}:\\d{12}:(?:key/${KEY_ID}|${ALIAS}))$`,
);
/** The AWS-managed EBS key: as good as "the default key" when sharing. */
export const DEFAULT_EBS_ALIASES = new Set(['alias/aws/ebs']);
export const AMI_ID = /^ami-[0-9a-f]{8,17}$/;
export const SNAPSHOT_ID = /^snap-[0-9a-f]{8,17}$/;
export const ACCOUNT_ID = /^\d{12}$/;
export const ORG_ARN = /^arn:aws(?:-[a-z]+)*:organizations::\d{12}:organization\/o-[a-z0-9]{10,32}$/;
export const OU_ARN =
  /^arn:aws(?:-[a-z]+)*:organizations::\d{12}:ou\/o-[a-z0-9]{10,32}\/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$/;
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
export const DEVICE_PATH = /^\/dev\/(?:sd|xvd)[f-p]$/;
export const BUILD_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const AMI_NAME_CHARS = /^[A-Za-z0-9()[\] ./\-'@_]*$/;

/**
 * What is wrong with a rendered AMI name (and the fix), or undefined when it is valid: 3–128
 * characters of `A-Za-z0-9()[] ./-'@_`, as EC2 and Packer require.
 * @internal
 */
export function amiNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 128) {
    return `must be 3 to 128 characters long, got ${name.length} (${show(name)}); shorten or lengthen it`;
  }
  if (!AMI_NAME_CHARS.test(name)) {
    const badChars = [...new Set(name.replace(/[A-Za-z0-9()[\] ./\-'@_]/g, ''))].join('');
    return `may only contain letters, digits and ()[] ./-'@_, got ${show(name)} (bad: ${show(badChars)}); pipe dynamic parts through clean_resource_name, e.g. {{ .SourceAMIName | clean_resource_name }}`;
  }
  return undefined;
}

/**
 * True when an RFC 3339 time names a real instant: month 1-12, a day the month has (2030-02-30 is
 * not one; JavaScript would roll it into March), hours 0-23, minutes and seconds 0-59.
 * @internal
 */
export function isRealRfc3339(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))$/.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second, offH, offM] = m.slice(1).map((n) => (n === undefined ? 0 : Number(n)));
  const daysInMonth = new Date(Date.UTC(year!, month, 0)).getUTCDate();
  return (
    month! >= 1 &&
    month! <= 12 &&
    day! >= 1 &&
    day! <= daysInMonth &&
    hour! <= 23 &&
    minute! <= 59 &&
    second! <= 59 &&
    offH! <= 23 &&
    offM! <= 59
  );
}
