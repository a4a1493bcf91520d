/**
 * Builders for the pure domain tests: a fixed `now`, keys aged in whole UTC calendar days, users and
 * ledgers built directly from the model types. No clock, no fakes.
 */
import {
  emptyLedger,
  type AccessKey,
  type PendingNotice,
  type UserLedger,
  type UserSnapshot,
} from '../../../lambda/domain/model';
import { renderNotice } from '../../../lambda/domain/notices';
import {
  planUser,
  type KeyAssessment,
  type PlannedAction,
  type UserPlan,
} from '../../../lambda/domain/policy';
import { DEFAULT_SETTINGS, type RotationSettings } from '../../../lambda/domain/settings';

/** 02:00 UTC, as a daily schedule would run. */
export const NOW = new Date('2026-06-01T02:00:00Z');
export const ACCOUNT_ID = '111122223333';
export const USER_NAME = 'alice';
export const OWNER_TAG = DEFAULT_SETTINGS.ownerTag;
export const EXEMPTION_TAG = DEFAULT_SETTINGS.exemptionTag;

export const OLD = 'AKIAOLDKEY0000000001';
export const NEW = 'AKIANEWKEY0000000002';
export const SPARE = 'AKIASPAREKEY00000003';

const MS_PER_DAY = 86_400_000;

/** A time on the UTC calendar day `days` before NOW's day (default 10:00, later in the day than NOW). */
export function daysAgo(days: number, time = '10:00:00'): Date {
  const day = new Date(Date.UTC(2026, 5, 1) - days * MS_PER_DAY).toISOString().slice(0, 10);
  return new Date(`${day}T${time}Z`);
}

export interface KeySpec {
  readonly status?: 'Active' | 'Inactive';
  /** Days since last use; undefined = never used. */
  readonly lastUsedDaysAgo?: number;
  readonly lastUsedDate?: Date;
  readonly createDate?: Date;
}

/** A key `ageDays` calendar days old (created at 10:00 UTC on that day). */
export function key(accessKeyId: string, ageDays: number, spec: KeySpec = {}): AccessKey {
  const lastUsedDate =
    spec.lastUsedDate ??
    (spec.lastUsedDaysAgo === undefined ? undefined : daysAgo(spec.lastUsedDaysAgo, '01:00:00'));
  return {
    accessKeyId,
    status: spec.status ?? 'Active',
    createDate: spec.createDate ?? daysAgo(ageDays),
    lastUsedDate,
  };
}

export function inactiveKey(accessKeyId: string, ageDays: number): AccessKey {
  return key(accessKeyId, ageDays, { status: 'Inactive' });
}

/** A user with a valid owner tag, so that no owner finding gets in the way. */
export function user(keys: readonly AccessKey[], overrides: Partial<UserSnapshot> = {}): UserSnapshot {
  const path = overrides.path ?? '/';
  return {
    userName: USER_NAME,
    arn: `arn:aws:iam::${ACCOUNT_ID}:user${path}${USER_NAME}`,
    path,
    tags: { [OWNER_TAG]: 'alice@example.com' },
    keys,
    ...overrides,
  };
}

export function ledger(overrides: Partial<UserLedger> = {}): UserLedger {
  return { ...emptyLedger(ACCOUNT_ID, USER_NAME), version: 3, ...overrides };
}

/** A ledger that remembers the rotation OLD -> NEW. */
export function pairLedger(overrides: Partial<UserLedger> = {}, rotatedDaysAgo = 0): UserLedger {
  return ledger({
    rotations: [{ oldKeyId: OLD, newKeyId: NEW, rotatedAt: daysAgo(rotatedDaysAgo).toISOString() }],
    ...overrides,
  });
}

export interface PlanOptions {
  readonly ledger?: UserLedger;
  readonly settings?: Partial<RotationSettings>;
  readonly now?: Date;
  readonly user?: Partial<UserSnapshot>;
}

export function plan(keys: readonly AccessKey[], options: PlanOptions = {}): UserPlan {
  return planUser({
    user: user(keys, options.user),
    ledger: options.ledger,
    now: options.now ?? NOW,
    settings: { ...DEFAULT_SETTINGS, ...options.settings },
  });
}

export function kinds(result: UserPlan): string[] {
  return result.actions.map((action) => action.kind);
}

/** `kind:keyId` for each action, the shape most tables compare. */
export function summary(result: UserPlan): string[] {
  return result.actions.map((action) => describe(action));
}

function describe(action: PlannedAction): string {
  if ('keyId' in action) return `${action.kind}:${action.keyId}`;
  if ('keyIds' in action) return `${action.kind}:${action.keyIds.join(',')}`;
  return action.kind;
}

export function actionOf<K extends PlannedAction['kind']>(
  result: UserPlan,
  kind: K,
): Extract<PlannedAction, { kind: K }> {
  const found = result.actions.find((action) => action.kind === kind);
  if (!found) throw new Error(`no ${kind} action in ${JSON.stringify(summary(result))}`);
  return found as Extract<PlannedAction, { kind: K }>;
}

export function assessment(result: UserPlan, keyId: string): KeyAssessment {
  const found = result.keys.find((entry) => entry.accessKeyId === keyId);
  if (!found) throw new Error(`no key ${keyId} in the plan`);
  return found;
}

export function stageOf(result: UserPlan, keyId: string): string {
  return assessment(result, keyId).stage;
}

/** A notice waiting in the outbox; only its presence matters to the policy and the screen. */
export function pendingNotice(id = 'n1'): PendingNotice {
  const notification = renderNotice(
    {
      accountId: ACCOUNT_ID,
      userName: USER_NAME,
      owner: 'alice@example.com',
      recipients: ['alice@example.com'],
      secretName: `iam-keys/${ACCOUNT_ID}/${USER_NAME}`,
    },
    { event: 'key.deleted', keyId: OLD, reason: 'inactive for 14 days' },
    id,
  );
  return { id, notification };
}
