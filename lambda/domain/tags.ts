/** Reading the user tags that steer the policy: owner and exemption. Pure. */
import { daysBetween } from './time';

/** `default` stands for the default recipients. */
export const DEFAULT_OWNER = 'default';

// Deliberately simple: one @, no spaces, a dot in the domain. SNS e-mail validation is the real judge.
const EMAIL = /^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/;

export interface OwnerResolution {
  /** The addresses to notify, or [DEFAULT_OWNER]. */
  readonly recipients: readonly string[];
  /** The value used for the SNS `owner` attribute: the first address, or `default`. */
  readonly owner: string;
  /** Why the default was used, when the tag was missing or malformed. */
  readonly problem?: string;
}

export function resolveOwner(tags: Readonly<Record<string, string>>, ownerTag: string): OwnerResolution {
  const raw = tags[ownerTag];
  if (raw === undefined || raw.trim() === '') {
    return { recipients: [DEFAULT_OWNER], owner: DEFAULT_OWNER, problem: `no ${ownerTag} tag` };
  }
  const parts = raw
    .split(/[,;\s]+/)
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  const bad = parts.filter((part) => !EMAIL.test(part));
  if (parts.length === 0 || bad.length > 0) {
    return {
      recipients: [DEFAULT_OWNER],
      owner: DEFAULT_OWNER,
      problem: `tag ${ownerTag} is not a list of e-mail addresses (${JSON.stringify(raw)})`,
    };
  }
  const recipients = [...new Set(parts.map((part) => part.toLowerCase()))];
  return { recipients, owner: recipients[0]! };
}

export interface Exemption {
  readonly reason: string;
  /** Last day (inclusive, UTC) the exemption applies; undefined = no expiry. */
  readonly until?: Date;
  /** False when the exemption has expired and no longer applies. */
  readonly applies: boolean;
  /** Set when the tag value could not be read; the exemption is then applied (fail safe) and reported. */
  readonly problem?: string;
}

const UNTIL = /(?:^|[;\s])until\s*=\s*([^;\s]*)/i;
const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

function parseIsoDay(text: string): Date | undefined {
  const match = ISO_DAY.exec(text);
  if (!match) return undefined;
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  // Reject 2026-02-31 and the like, which Date.UTC would roll over.
  return date.toISOString().slice(0, 10) === text ? date : undefined;
}

/**
 * Reads the exemption tag. Value: free-text reason, optionally `until=YYYY-MM-DD` (inclusive).
 * An unreadable `until` keeps the exemption in force (never modify a user someone meant to exempt)
 * and is reported so that somebody fixes the tag.
 */
export function resolveExemption(
  tags: Readonly<Record<string, string>>,
  exemptionTag: string,
  now: Date,
): Exemption | undefined {
  const raw = tags[exemptionTag];
  if (raw === undefined) return undefined;
  const match = UNTIL.exec(raw);
  const reason =
    raw
      .replace(UNTIL, ' ')
      .replace(/(?:^|[;\s])reason\s*=\s*/i, ' ')
      .replace(/[;\s]+/g, ' ')
      .trim() || 'no reason given';
  if (!match) return { reason, applies: true };
  const until = parseIsoDay(match[1] ?? '');
  if (!until) {
    return {
      reason,
      applies: true,
      problem: `tag ${exemptionTag} has an unreadable expiry ${JSON.stringify(match[1])}; write until=YYYY-MM-DD`,
    };
  }
  return { reason, until, applies: daysBetween(until, now) <= 0 };
}

/** Whether an IAM path is in scope: under an included prefix and under no excluded one. */
export function inScope(
  path: string,
  includePaths: readonly string[],
  excludePaths: readonly string[],
): boolean {
  return (
    includePaths.some((prefix) => path.startsWith(prefix)) &&
    !excludePaths.some((prefix) => path.startsWith(prefix))
  );
}

/** The IAM path of a user from its ARN (`arn:aws:iam::123:user/path/name` -> `/path/`). */
export function pathFromArn(arn: string, userName: string): string {
  const resource = arn.slice(arn.indexOf(':user/') + ':user'.length);
  const path = resource.slice(0, resource.length - userName.length);
  return path.startsWith('/') && path.endsWith('/') ? path : '/';
}
