/**
 * The IAM credential report: parse its CSV and screen users cheaply, so that detection costs O(1)
 * IAM calls per account and only users that may need action are read one by one. Pure.
 */
import type { UserLedger } from './model';
import { keysFingerprint, settingsDigest } from './review';
import type { RotationSettings } from './settings';
import { inScope, pathFromArn } from './tags';
import { daysBetween } from './time';

export const ROOT_ACCOUNT_ROW = '<root_account>';

export interface ReportKeySlot {
  readonly active: boolean;
  /** Creation time of the key in this slot; undefined when the slot is empty. */
  readonly createDate?: Date;
  readonly lastUsedDate?: Date;
}

export interface CredentialReportRow {
  readonly userName: string;
  readonly arn: string;
  readonly path: string;
  /** The two key slots; a slot with no createDate holds no key. */
  readonly keys: readonly ReportKeySlot[];
}

const REQUIRED_COLUMNS = [
  'user',
  'arn',
  'access_key_1_active',
  'access_key_1_last_rotated',
  'access_key_1_last_used_date',
  'access_key_2_active',
  'access_key_2_last_rotated',
  'access_key_2_last_used_date',
] as const;

function parseTime(value: string | undefined): Date | undefined {
  if (
    value === undefined ||
    value === '' ||
    value === 'N/A' ||
    value === 'no_information' ||
    value === 'not_supported'
  ) {
    return undefined;
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Parses the report CSV (RFC 4180; IAM quotes nothing, but be safe). Throws if a needed column is missing. */
export function parseCredentialReport(csv: string): CredentialReportRow[] {
  const lines = csv.split(/\r?\n/).filter((line) => line.trim() !== '');
  const header = splitCsvLine(lines[0] ?? '');
  const column = new Map(header.map((name, index) => [name, index]));
  const missing = REQUIRED_COLUMNS.filter((name) => !column.has(name));
  if (missing.length > 0) {
    throw new Error(`credential report lacks column(s) ${missing.join(', ')}`);
  }
  const rows: CredentialReportRow[] = [];
  for (const line of lines.slice(1)) {
    const cells = splitCsvLine(line);
    const cell = (name: (typeof REQUIRED_COLUMNS)[number]) => cells[column.get(name)!];
    const userName = cell('user') ?? '';
    if (userName === ROOT_ACCOUNT_ROW || userName === '') continue;
    const arn = cell('arn') ?? '';
    const slot = (n: 1 | 2): ReportKeySlot => ({
      active: cell(`access_key_${n}_active`) === 'true',
      createDate: parseTime(cell(`access_key_${n}_last_rotated`)),
      lastUsedDate: parseTime(cell(`access_key_${n}_last_used_date`)),
    });
    rows.push({ userName, arn, path: pathFromArn(arn, userName), keys: [slot(1), slot(2)] });
  }
  return rows;
}

function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const cells: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quoted) {
      if (char === '"' && line[i + 1] === '"') {
        current += '"';
        i++;
      } else if (char === '"') {
        quoted = false;
      } else {
        current += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === ',') {
      cells.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  cells.push(current);
  return cells;
}

/**
 * What the report and the ledger alone suggest for one user, as action kinds for the audit trail:
 * empty when nothing may be due. Errs towards work: a wrong yes costs the rotator a live read of the
 * user; a wrong no would leave a key unrotated for a day. The report may be up to four hours old,
 * but creation dates do not change and ages only grow, so a due key is never missed; keys created
 * since the report are new and not due. The rotator decides again from live state.
 */
export function suggestedActions(
  row: CredentialReportRow,
  ledger: UserLedger | undefined,
  settings: RotationSettings,
  now: Date,
): string[] {
  if (ledger?.inFlight || (ledger?.outbox.length ?? 0) > 0) return ['resume']; // ours, in scope or not
  if (!inScope(row.path, settings.includePaths, settings.excludePaths)) return [];
  const present = row.keys.filter((slot) => slot.createDate !== undefined);
  const active = present.filter((slot) => slot.active);
  const inactive = present.filter((slot) => !slot.active);
  // The report has no key ids: inactive keys are matched to the ledger's deletion clocks by count.
  const tracked = Object.values(ledger?.inactiveSince ?? {});
  const suggested: string[] = [];
  // Fewer inactive keys than clocks: deleted or reactivated by hand, the ledger is tidied.
  if (inactive.length < tracked.length) suggested.push('forget');
  // An untracked inactive key must have its deletion clock started.
  if (inactive.length > tracked.length) suggested.push('track-inactive');
  if (active.length >= 2) {
    // A rotation pair (grace, last use of the old key) or a foreign pair: only live state tells.
    suggested.push('review');
  } else if (active.length === 1) {
    const slot = active[0]!;
    const age = daysBetween(slot.createDate!, now);
    if (
      settings.reapUnusedDays !== undefined &&
      daysBetween(slot.lastUsedDate ?? slot.createDate!, now) >= settings.reapUnusedDays
    ) {
      suggested.push('reap');
    } else if (age >= settings.rotateAfterDays) {
      suggested.push(...(inactive.length > 0 ? ['make-room'] : []), 'rotate');
    } else if (age >= settings.rotateAfterDays - settings.warnDays) {
      suggested.push('warn');
    }
  }
  if (tracked.some((since) => daysBetween(new Date(since), now) >= settings.deleteAfterDays)) {
    suggested.push('delete');
  }
  return suggested;
}

/** Whether a user may need action, judged from the report and the ledger alone (see {@link suggestedActions}). */
export function mayNeedAction(
  row: CredentialReportRow,
  ledger: UserLedger | undefined,
  settings: RotationSettings,
  now: Date,
): boolean {
  return suggestedActions(row, ledger, settings, now).length > 0;
}

/**
 * The planner's screen: the actions to queue a user for (empty: skip the user today), from the
 * report and the ledger alone, with no live read.
 * - Our unfinished work (a rotation in flight, undelivered notices) is always queued.
 * - The review the rotator recorded skips the user while the report shows the same keys and its
 *   day has not come: users in a grace period or waiting for deletion cost nothing daily.
 *   A report generated before the rotator's live read (IAM reuses a report for up to four hours, so
 *   a second run the same day reads the morning's report) shows nothing newer than the review: its
 *   keys are not compared, the review alone decides.
 * - Otherwise what the report suggests; and a user with a review is looked at again when its keys
 *   changed since (by hand) or its day has come, even when the report alone suggests nothing (the
 *   report cannot tell key ids apart, nor show tags).
 */
export function screenUser(
  row: CredentialReportRow,
  ledger: UserLedger | undefined,
  settings: RotationSettings,
  now: Date,
  reportGeneratedAt?: Date,
): string[] {
  if (ledger?.inFlight || (ledger?.outbox.length ?? 0) > 0) return ['resume'];
  if (!inScope(row.path, settings.includePaths, settings.excludePaths)) return [];
  // A review recorded under other settings (or before reviews named them) says nothing about today.
  const review = ledger?.review?.settings === settingsDigest(settings) ? ledger.review : undefined;
  const keys = keysFingerprint(row.keys);
  // An unreadable date never skips (NaN compares false).
  // IAM states the report's time to the second: a second's margin keeps a report made in the same
  // second as the read from counting as older than it.
  const reportPredatesReview =
    reportGeneratedAt !== undefined &&
    review?.seenAt !== undefined &&
    reportGeneratedAt.getTime() + 1000 <= Date.parse(review.seenAt);
  if (review && (review.keys === keys || reportPredatesReview) && now.getTime() < Date.parse(review.due)) {
    return [];
  }
  const suggested = suggestedActions(row, ledger, settings, now);
  if (suggested.length > 0) return suggested;
  // Any review (one of other settings too): the rotator looks again and records a current one.
  return ledger?.review ? ['review'] : [];
}
