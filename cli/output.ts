/** How results look: aligned tables for people, CSV and JSON for machines. */
import type { KeyAssessment, PlannedAction, UserPlan } from '../lambda/domain/policy';
import type { RotationSettings } from '../lambda/domain/settings';
import type { UserOutcome } from '../lambda/services/rotate-user';

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

function csvCell(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csv(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  return [headers, ...rows].map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}

function day(iso: string | undefined): string {
  return iso ? iso.slice(0, 10) : 'never';
}

function keyIdsOf(action: PlannedAction): string[] {
  if ('keyId' in action) return [action.keyId];
  if ('keyIds' in action) return [...action.keyIds];
  return [];
}

/** One row per key (and one for a user whose actions name no key), with the action due. */
export function planRows(users: readonly UserPlan[]): string[][] {
  const rows: string[][] = [];
  for (const user of users) {
    const owner = user.owner.recipients.join(' ');
    const userActions = user.actions.filter((action) => keyIdsOf(action).length === 0);
    const describe = (actions: readonly PlannedAction[]) => ({
      action: actions.map((action) => action.kind).join(', ') || (user.exemption?.applies ? 'exempt' : '-'),
      reason:
        actions.map((action) => action.reason).join('; ') ||
        (user.exemption?.applies
          ? `${user.exemption.reason}${user.exemption.until ? ` (until ${user.exemption.until.toISOString().slice(0, 10)})` : ''}`
          : ''),
    });
    user.keys.forEach((key: KeyAssessment, index) => {
      const own = user.actions.filter((action) => keyIdsOf(action).includes(key.accessKeyId));
      const { action, reason } = describe(index === 0 ? [...userActions, ...own] : own);
      rows.push([
        user.userName,
        key.accessKeyId,
        key.status,
        `${key.ageDays}d`,
        day(key.lastUsedDate),
        owner,
        key.stage,
        action,
        reason,
      ]);
    });
    if (user.keys.length === 0 && user.actions.length > 0) {
      const { action, reason } = describe(user.actions);
      rows.push([user.userName, '-', '-', '-', '-', owner, '-', action, reason]);
    }
  }
  return rows;
}

export const PLAN_HEADERS = [
  'USER',
  'KEY',
  'STATUS',
  'AGE',
  'LAST USED',
  'OWNER',
  'STAGE',
  'ACTION',
  'REASON',
];

export type ReportCategory = 'over-policy-age' | 'in-grace' | 'postponed' | 'exempt' | 'conflict';

export interface ReportRow {
  readonly category: ReportCategory;
  readonly userName: string;
  readonly accessKeyId: string;
  readonly status: string;
  readonly ageDays: number;
  readonly lastUsed: string;
  readonly owner: string;
  readonly detail: string;
}

/** Keys that matter for compliance, one row each (a key may appear in two categories). */
export function reportRows(users: readonly UserPlan[], settings: RotationSettings): ReportRow[] {
  const rows: ReportRow[] = [];
  for (const user of users) {
    const owner = user.owner.recipients.join(' ');
    for (const key of user.keys) {
      const base = {
        userName: user.userName,
        accessKeyId: key.accessKeyId,
        status: key.status,
        ageDays: key.ageDays,
        lastUsed: day(key.lastUsedDate),
        owner,
      };
      if (user.exemption?.applies) {
        const until = user.exemption.until
          ? `until ${user.exemption.until.toISOString().slice(0, 10)}`
          : 'no expiry';
        rows.push({ ...base, category: 'exempt', detail: `${user.exemption.reason} (${until})` });
      }
      if (key.status === 'Active' && key.ageDays >= settings.maxKeyAgeDays) {
        rows.push({
          ...base,
          category: 'over-policy-age',
          detail: `older than maxKeyAgeDays ${settings.maxKeyAgeDays}`,
        });
      }
      const postpone = user.actions.find(
        (action) => action.kind === 'postpone' && action.keyId === key.accessKeyId,
      );
      if (key.stage === 'in-grace')
        rows.push({ ...base, category: 'in-grace', detail: 'replaced; grace period running' });
      if (postpone && postpone.kind === 'postpone') {
        rows.push({
          ...base,
          category: 'postponed',
          detail: `still in use; enforced on ${postpone.enforceOn}`,
        });
      }
      if (key.stage === 'foreign-pair') {
        rows.push({ ...base, category: 'conflict', detail: 'two active keys not created by the service' });
      }
    }
  }
  return rows;
}

export const REPORT_HEADERS = [
  'category',
  'userName',
  'accessKeyId',
  'status',
  'ageDays',
  'lastUsed',
  'owner',
  'detail',
];

export function reportCsvRows(rows: readonly ReportRow[]): string[][] {
  return rows.map((row) => [
    row.category,
    row.userName,
    row.accessKeyId,
    row.status,
    String(row.ageDays),
    row.lastUsed,
    row.owner,
    row.detail,
  ]);
}

export const OUTCOME_HEADERS = ['USER', 'RESULT', 'ACTION', 'KEY', 'NEW KEY', 'DETAIL'];

export function outcomeRows(outcomes: readonly UserOutcome[]): string[][] {
  const rows: string[][] = [];
  for (const outcome of outcomes) {
    if (outcome.performed.length === 0) {
      const planned = outcome.plan?.actions ?? [];
      if (planned.length === 0) rows.push([outcome.userName, outcome.status, '-', '-', '-', '']);
      for (const action of planned) {
        rows.push([
          outcome.userName,
          outcome.status,
          action.kind,
          keyIdsOf(action).join(' ') || '-',
          '-',
          action.reason,
        ]);
      }
      continue;
    }
    for (const action of outcome.performed) {
      rows.push([
        outcome.userName,
        outcome.status,
        action.kind,
        action.keyId ?? '-',
        action.newKeyId ?? '-',
        action.detail,
      ]);
    }
  }
  return rows;
}
