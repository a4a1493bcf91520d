/**
 * Retirement of old keys: deactivate (after the grace, unused since the rotation), enforce (at the
 * hard limit, in use or not), reap (unused, when switched on), delete (inactive long enough), and
 * make room (an inactive key deleted so that the replacement fits).
 *
 * Each takes the lock in one write before the IAM call (the call must not race a forced rotation or
 * the CLI), then records the change with its notice in one write: IAM does not record when a key
 * became inactive, and only this process knows it changed anything until that write. The notice is
 * published and cleared when the unit closes (announce.ts). Both calls are safe to repeat: a key
 * already inactive stays so, and a key already gone is the outcome wanted.
 */
import { NoSuchKeyError } from '../../domain/errors';
import type { NoticeContext, NoticeFacts } from '../../domain/notices';
import type { PlannedAction } from '../../domain/policy';
import { dayStartAfter, isoDay } from '../../domain/time';
import type { AuditAction } from '../audit';
import { UnitOfWork, without } from './unit-of-work';

export async function deactivate(
  unit: UnitOfWork,
  action: Extract<PlannedAction, { kind: 'deactivate' | 'enforce' | 'reap' }>,
  context: NoticeContext,
): Promise<void> {
  await unit.takeLock();
  await unit.deps.iam.updateAccessKey(unit.userName, action.keyId, 'Inactive');
  const now = unit.now();
  unit.user = unit.user && {
    ...unit.user,
    keys: unit.user.keys.map((key) =>
      key.accessKeyId === action.keyId ? { ...key, status: 'Inactive' } : key,
    ),
  };
  const deleteOn = isoDay(dayStartAfter(now, unit.deps.settings.deleteAfterDays));
  const newKeyId = 'replacementKeyId' in action ? action.replacementKeyId : undefined;
  const facts: NoticeFacts =
    action.kind === 'reap'
      ? { event: 'key.reaped', keyId: action.keyId, reason: action.reason, deleteOn }
      : {
          event: action.kind === 'enforce' ? 'key.enforced' : 'key.deactivated',
          keyId: action.keyId,
          newKeyId: newKeyId ?? '',
          deleteOn,
        };
  const auditAction: AuditAction =
    action.kind === 'reap' ? 'key.reaped' : action.kind === 'enforce' ? 'key.enforced' : 'key.deactivated';
  unit.stage(
    (record) => ({
      ...record,
      inactiveSince: { ...record.inactiveSince, [action.keyId]: now.toISOString() },
      reactivatedSeen: without(record.reactivatedSeen, [action.keyId]),
    }),
    { action: auditAction, keyId: action.keyId, detail: action.reason },
  );
  unit.queueNotice(
    context,
    facts,
    `${unit.accountId}/${unit.userName}/${action.kind}/${action.keyId}/${isoDay(now)}`,
  );
  await unit.write();
  unit.log(auditAction, 'success', { keyId: action.keyId, newKeyId, reason: action.reason });
  unit.performed.push({ kind: action.kind, keyId: action.keyId, newKeyId, detail: action.reason });
}

/** Deletes an inactive key (`delete`, or `make-room` before a rotation). */
export async function deleteKey(
  unit: UnitOfWork,
  keyId: string,
  reason: string,
  context: NoticeContext,
): Promise<void> {
  await unit.takeLock();
  try {
    await unit.deps.iam.deleteAccessKey(unit.userName, keyId);
  } catch (error) {
    // Gone already (a retry after a timed-out delete, or deleted by hand): the outcome we wanted.
    if (!(error instanceof NoSuchKeyError)) throw error;
  }
  unit.user = unit.user && { ...unit.user, keys: unit.user.keys.filter((key) => key.accessKeyId !== keyId) };
  unit.stage(
    (record) => ({
      ...record,
      inactiveSince: without(record.inactiveSince, [keyId]),
      reactivatedSeen: without(record.reactivatedSeen, [keyId]),
      warnedKeys: without(record.warnedKeys, [keyId]),
    }),
    { action: 'key.deleted', keyId, detail: reason },
  );
  unit.queueNotice(
    context,
    { event: 'key.deleted', keyId, reason },
    `${unit.accountId}/${unit.userName}/deleted/${keyId}`,
  );
  await unit.write();
  unit.log('key.deleted', 'success', { keyId, reason });
  unit.performed.push({ kind: 'delete', keyId, detail: reason });
}
