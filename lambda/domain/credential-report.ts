/**
 * The IAM credential report: parse its CSV and screen users cheaply, so that detection costs O(1)
 * IAM calls per account and only users that may need action are read one by one. Pure.
 */
import type { UserLedger } from './model';
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
 * Whether a user may need action, judged from the report and the ledger alone. Errs towards yes:
 * a yes costs a few IAM calls to confirm live state; a wrong no would leave a key unrotated for a day.
 * The report may be up to four hours old, but creation dates do not change and ages only grow, so
 * a due key is never missed; keys created since the report are new and not due.
 */
export function mayNeedAction(
  row: CredentialReportRow,
  ledger: UserLedger | undefined,
  settings: RotationSettings,
  now: Date,
): boolean {
  if (ledger?.inFlight || (ledger?.outbox.length ?? 0) > 0) return true; // our unfinished work, in scope or not
  if (!inScope(row.path, settings.includePaths, settings.excludePaths)) return false;
  const present = row.keys.filter((slot) => slot.createDate !== undefined);
  const active = present.filter((slot) => slot.active);
  const inactive = present.filter((slot) => !slot.active);
  if (active.length >= 2) return true;
  const warnFrom = settings.rotateAfterDays - settings.warnDays;
  for (const slot of active) {
    if (daysBetween(slot.createDate!, now) >= warnFrom) return true;
    if (
      settings.reapUnusedDays !== undefined &&
      daysBetween(slot.lastUsedDate ?? slot.createDate!, now) >= settings.reapUnusedDays
    ) {
      return true;
    }
  }
  const tracked = Object.values(ledger?.inactiveSince ?? {});
  // An untracked inactive key must have its deletion clock started; a tracked one may be due.
  if (inactive.length > tracked.length) return true;
  if (inactive.length < tracked.length) return true; // deleted or reactivated by hand: tidy the ledger
  return tracked.some((since) => daysBetween(new Date(since), now) >= settings.deleteAfterDays);
}
