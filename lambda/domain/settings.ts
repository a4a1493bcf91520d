import { ConfigError } from './errors';

/**
 * Every threshold and name the rotation policy uses. Days are whole UTC calendar days
 * (see {@link daysBetween}), so a daily run acts on the day the lifecycle table names.
 */
export interface RotationSettings {
  /**
   * Rotate the active key when its age reaches this many days: a new key is created and stored, and
   * the old one stays active for `graceDays`. Whole days, 0-3650; at least `warnDays`, and
   * `rotateAfterDays + graceDays` may not exceed `maxKeyAgeDays`.
   * @default 80
   */
  readonly rotateAfterDays: number;
  /**
   * Warn the owner this many days before rotation (0 = no warning). Whole days, 0-3650, at most
   * `rotateAfterDays`.
   * @default 4
   */
  readonly warnDays: number;
  /**
   * Days the old key stays active after the new key is created, so that its users can switch to the
   * new one. Whole days, 0-3650.
   * @default 7
   */
  readonly graceDays: number;
  /**
   * Hard limit on a key's age, in days: an old key this old is deactivated after the grace, in use
   * or not. Whole days, 0-3650, at least `rotateAfterDays + graceDays`.
   * @default 90
   */
  readonly maxKeyAgeDays: number;
  /**
   * Delete a key this many days after it became inactive. Whole days, 0-3650.
   * @default 14
   */
  readonly deleteAfterDays: number;
  /**
   * Deactivate active keys unused for this many days (CIS 2.11). Whole days, 1-3650; in props and
   * `cdk.json`, `true` means 45 days and `false` (or leaving it unset) turns reaping off.
   * @default - off (unused keys are not deactivated)
   */
  readonly reapUnusedDays?: number;
  /**
   * User tag that exempts the user; value `reason words until=YYYY-MM-DD` (both optional). An IAM
   * tag key (1-128 letters, digits, spaces or `_.:/=+-@`, not starting with `aws:`), other than
   * `ownerTag`.
   * @default 'key-rotation:exempt'
   */
  readonly exemptionTag: string;
  /**
   * User tag holding the owner's e-mail address(es), separated by spaces (IAM tag values allow no
   * commas). An IAM tag key, as `exemptionTag`, other than it.
   * @default 'key-rotation:owner'
   */
  readonly ownerTag: string;
  /**
   * Only users whose IAM path starts with one of these are in scope. At least one IAM path, each
   * starting and ending with `/` (at most 512 characters); `['/']` is every user.
   * @default ['/']
   */
  readonly includePaths: readonly string[];
  /**
   * Users whose IAM path starts with one of these are out of scope, and the functions' roles deny
   * every change to their keys (an explicit Deny). IAM paths, each starting and ending with `/`.
   * @default []
   */
  readonly excludePaths: readonly string[];
}

export const DEFAULT_SETTINGS: RotationSettings = {
  rotateAfterDays: 80,
  warnDays: 4,
  graceDays: 7,
  maxKeyAgeDays: 90,
  deleteAfterDays: 14,
  reapUnusedDays: undefined,
  exemptionTag: 'key-rotation:exempt',
  ownerTag: 'key-rotation:owner',
  includePaths: ['/'],
  excludePaths: [],
};

/** The value to use for reapUnusedDays when it is switched on without a number. */
export const DEFAULT_REAP_UNUSED_DAYS = 45;

/** The largest number of days any day setting takes (ten years). */
export const MAX_DAYS = 3650;
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const IAM_PATH = /^\/([\x21-\x7e]+\/)?$/;

function checkDays(name: string, value: unknown, problems: string[]): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DAYS) {
    problems.push(
      `${name} must be a whole number of days from 0 to ${MAX_DAYS} (got ${JSON.stringify(value)})`,
    );
  }
}

function checkPaths(name: string, value: unknown, problems: string[]): void {
  if (!Array.isArray(value)) {
    problems.push(
      `${name} must be a list of IAM paths such as ["/"] or ["/service/"] (got ${JSON.stringify(value)})`,
    );
    return;
  }
  for (const path of value) {
    if (typeof path !== 'string' || path.length > 512 || !IAM_PATH.test(path)) {
      problems.push(
        `${name} entry ${JSON.stringify(path)} is not an IAM path: it must start and end with "/"`,
      );
    }
  }
}

/**
 * Merges `input` over the defaults and validates the result. Throws a {@link ConfigError} listing
 * every problem, each naming the setting and what to change.
 */
export function resolveSettings(
  input: Partial<Record<keyof RotationSettings, unknown>> = {},
): RotationSettings {
  const problems: string[] = [];
  const known = new Set<string>(Object.keys(DEFAULT_SETTINGS));
  for (const key of Object.keys(input)) {
    if (!known.has(key)) {
      problems.push(`${key} is not a setting; known settings are ${[...known].join(', ')}`);
    }
  }
  const merged = { ...DEFAULT_SETTINGS } as Record<string, unknown>;
  for (const [key, value] of Object.entries(input)) {
    if (value !== undefined) merged[key] = value;
  }
  if (merged.reapUnusedDays === true) merged.reapUnusedDays = DEFAULT_REAP_UNUSED_DAYS;
  if (merged.reapUnusedDays === false || merged.reapUnusedDays === null) merged.reapUnusedDays = undefined;

  for (const name of [
    'rotateAfterDays',
    'warnDays',
    'graceDays',
    'maxKeyAgeDays',
    'deleteAfterDays',
  ] as const) {
    checkDays(name, merged[name], problems);
  }
  if (merged.reapUnusedDays !== undefined) {
    checkDays('reapUnusedDays', merged.reapUnusedDays, problems);
    if (merged.reapUnusedDays === 0) {
      problems.push('reapUnusedDays must be at least 1 when set (leave it unset to turn reaping off)');
    }
  }
  for (const name of ['exemptionTag', 'ownerTag'] as const) {
    const value = merged[name];
    if (typeof value !== 'string' || !TAG_KEY.test(value) || value.startsWith('aws:')) {
      problems.push(
        `${name} must be a valid IAM tag key (1-128 letters, digits, spaces or _.:/=+-@, not starting with "aws:") (got ${JSON.stringify(value)})`,
      );
    }
  }
  if (merged.exemptionTag === merged.ownerTag && typeof merged.ownerTag === 'string') {
    problems.push(`exemptionTag and ownerTag must differ (both are ${JSON.stringify(merged.ownerTag)})`);
  }
  checkPaths('includePaths', merged.includePaths, problems);
  checkPaths('excludePaths', merged.excludePaths, problems);
  if (Array.isArray(merged.includePaths) && merged.includePaths.length === 0) {
    problems.push('includePaths must name at least one path; use ["/"] for every user');
  }

  if (problems.length === 0) {
    const { rotateAfterDays, warnDays, graceDays, maxKeyAgeDays } = merged as unknown as RotationSettings;
    if (warnDays > rotateAfterDays) {
      problems.push(
        `warnDays (${warnDays}) exceeds rotateAfterDays (${rotateAfterDays}): the warning cannot come before the key exists; lower warnDays`,
      );
    }
    if (rotateAfterDays + graceDays > maxKeyAgeDays) {
      problems.push(
        `rotateAfterDays + graceDays (${rotateAfterDays + graceDays}) exceeds maxKeyAgeDays (${maxKeyAgeDays}): lower rotateAfterDays or graceDays, or raise maxKeyAgeDays`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(merged) as unknown as RotationSettings;
}
