/**
 * What needs no change to IAM or the vault: ledger marks (an inactive key's deletion clock, keys
 * gone, a key switched back on) and notices (the warning before a rotation, a postponed
 * deactivation, two keys that are not ours, tags to fix). Each is only staged on the unit of work:
 * it rides along with the unit's next write, or its last one (announce.ts), so that a user with only
 * these costs one conditional write, and one more to clear the notices once published.
 */
import type { NoticeContext } from '../../domain/notices';
import type { PlannedAction, UserPlan } from '../../domain/policy';
import { DEFAULT_OWNER } from '../../domain/tags';
import { isoDay } from '../../domain/time';
import type { UserSnapshot } from '../../domain/model';
import { subscribeOwners } from './outbox';
import { UnitOfWork, without } from './unit-of-work';

type Action<K extends PlannedAction['kind']> = Extract<PlannedAction, { kind: K }>;

/** Keys deleted by hand: their marks are dropped. */
export function forget(unit: UnitOfWork, action: Action<'forget'>): void {
  unit.stage(
    (record) => ({
      ...record,
      inactiveSince: without(record.inactiveSince, action.keyIds),
      warnedKeys: without(record.warnedKeys, action.keyIds),
      reactivatedSeen: without(record.reactivatedSeen, action.keyIds),
    }),
    { action: 'ledger.tidied', detail: `${action.keyIds.join(', ')}: ${action.reason}` },
  );
  unit.log('ledger.tidied', 'success', { keyId: action.keyIds.join(','), reason: action.reason });
}

/** An inactive key seen for the first time: its deletion clock starts now (IAM does not record it). */
export function trackInactive(unit: UnitOfWork, action: Action<'track-inactive'>): void {
  const now = unit.now();
  unit.stage(
    (record) => ({
      ...record,
      inactiveSince: { ...record.inactiveSince, [action.keyId]: now.toISOString() },
    }),
    { action: 'key.tracked', keyId: action.keyId, detail: action.reason },
  );
  unit.log('key.tracked', 'success', { keyId: action.keyId, reason: action.reason });
}

/** A key we had deactivated is active again (by hand): noted, and the owner told; it gets one more grace. */
export function noteReactivated(
  unit: UnitOfWork,
  action: Action<'note-reactivated'>,
  context: NoticeContext,
): void {
  const now = unit.now();
  unit.stage(
    (record) => ({
      ...record,
      inactiveSince: without(record.inactiveSince, [action.keyId]),
      reactivatedSeen: { ...record.reactivatedSeen, [action.keyId]: now.toISOString() },
    }),
    { action: 'key.reactivated', keyId: action.keyId, detail: action.reason },
  );
  unit.queueNotice(
    context,
    { event: 'key.reactivated', keyId: action.keyId, reason: action.reason },
    `${unit.accountId}/${unit.userName}/reactivated/${action.keyId}/${now.toISOString()}`,
  );
  unit.log('key.reactivated', 'success', { keyId: action.keyId, reason: action.reason });
}

/** The owner is warned of the coming rotation (and subscribed, so that they have confirmed by then). */
export async function warn(
  unit: UnitOfWork,
  action: Action<'warn'>,
  plan: UserPlan,
  user: UserSnapshot,
): Promise<void> {
  await subscribeOwners(unit, plan, user);
  const now = unit.now();
  unit.stage(
    (record) => ({ ...record, warnedKeys: { ...record.warnedKeys, [action.keyId]: now.toISOString() } }),
    { action: 'key.warned', keyId: action.keyId, detail: action.reason },
  );
  unit.queueNotice(
    unit.noticeContext(plan, user),
    {
      event: 'key.expiring',
      keyId: action.keyId,
      rotateOn: action.rotateOn,
      graceDays: unit.deps.settings.graceDays,
    },
    `${unit.accountId}/${unit.userName}/expiring/${action.keyId}`,
  );
  unit.log('key.warned', 'success', { keyId: action.keyId, reason: action.reason, owner: plan.owner.owner });
}

/** The old key is still in use after its grace: the owner is reminded, at most once a day. */
export function postpone(
  unit: UnitOfWork,
  action: Action<'postpone'>,
  context: NoticeContext,
  user: UserSnapshot,
): void {
  const mark = `postponed:${action.keyId}`;
  const today = isoDay(unit.now());
  unit.log('key.postponed', 'skipped', {
    keyId: action.keyId,
    newKeyId: action.replacementKeyId,
    reason: action.reason,
    enforceOn: action.enforceOn,
  });
  if (unit.record.notices[mark] === today) return;
  const oldKey = user.keys.find((key) => key.accessKeyId === action.keyId);
  unit.stage((record) => ({ ...record, notices: { ...record.notices, [mark]: today } }), {
    action: 'key.postponed',
    keyId: action.keyId,
    detail: action.reason,
  });
  unit.queueNotice(
    context,
    {
      event: 'key.deactivation-postponed',
      keyId: action.keyId,
      newKeyId: action.replacementKeyId,
      lastUsed: oldKey?.lastUsedDate?.toISOString() ?? 'unknown',
      enforceOn: action.enforceOn,
    },
    `${unit.accountId}/${unit.userName}/postponed/${action.keyId}/${today}`,
  );
}

/** Two active keys the service did not pair (I3): reported once, nothing changed. */
export function reportConflict(unit: UnitOfWork, action: Action<'conflict'>, context: NoticeContext): void {
  unit.log('keys.conflict', 'skipped', { keyId: action.keyIds.join(','), reason: action.reason });
  const mark = `conflict:${action.keyIds.join(',')}`;
  if (unit.record.notices[mark] !== undefined) return;
  unit.stage((record) => ({ ...record, notices: { ...record.notices, [mark]: unit.now().toISOString() } }));
  unit.queueNotice(
    context,
    { event: 'keys.conflict', keyIds: action.keyIds },
    `${unit.accountId}/${unit.userName}/conflict/${action.keyIds.join(',')}`,
  );
}

/** Tags to fix go to the default recipients, who can fix tags; once per distinct set of findings. */
export function reportFindings(unit: UnitOfWork, plan: UserPlan, user: UserSnapshot): void {
  const mark = `tags:${plan.findings.join('|')}`;
  if (unit.record.notices[mark] !== undefined) return;
  const now = unit.now();
  unit.stage((record) => ({ ...record, notices: { ...record.notices, [mark]: now.toISOString() } }));
  unit.queueNotice(
    { ...unit.noticeContext(plan, user), owner: DEFAULT_OWNER, recipients: [DEFAULT_OWNER] },
    { event: 'tags.invalid', findings: plan.findings },
    `${unit.accountId}/${unit.userName}/tags/${isoDay(now)}`,
  );
}
