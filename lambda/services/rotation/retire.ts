/**
 * Retirement of old keys: deactivate (after the grace, unused since the rotation), enforce (at the
 * hard limit, in use or not), reap (unused, when switched on), delete (inactive long enough), and
 * make room (an inactive key deleted so that the replacement fits).
 *
 * IAM does not record when a key became inactive, and only this process knows it changed anything
 * until the ledger says so. So each change is written down before the IAM call, as a pending
 * retirement with its notice in the outbox (`awaits`), in one write that also takes the lock (the
 * call must not race a forced rotation or the CLI); the call; then one write records the change and
 * releases the notice for delivery (published and cleared when the unit closes, announce.ts).
 *
 * A call that fails leaves the pending entry, whatever the error: the next run (or the CLI's retry)
 * finds it, reads IAM, and either records the change and announces it, or, if IAM shows it did not
 * happen, drops it and lets the policy plan it again (settlePendingRetirements). Even an error that
 * says "refused" is not trusted to mean "nothing changed": the SDK retries, and an earlier attempt
 * that timed out may have landed before the last one was throttled or denied; IAM's own answer is
 * exact, and the next run reads it anyway. Both calls are safe to repeat: a key already inactive
 * stays so, and a key already gone is the outcome wanted.
 *
 * One case IAM cannot tell apart: a deactivation that landed and was then reactivated by hand before
 * the next run looks like one that did not land; the policy deactivates again without the extra
 * grace a reactivation by hand otherwise gets (README, Security notes and known limits).
 */
import { NoSuchKeyError } from '../../domain/errors';
import type { PendingRetirement, UserLedger, UserSnapshot } from '../../domain/model';
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
  const now = unit.now();
  const newKeyId = 'replacementKeyId' in action ? action.replacementKeyId : undefined;
  const change: PendingRetirement = {
    kind: action.kind,
    keyId: action.keyId,
    ...(newKeyId ? { newKeyId } : {}),
    reason: action.reason,
    requestedAt: now.toISOString(),
  };
  const deleteOn = isoDay(dayStartAfter(now, unit.deps.settings.deleteAfterDays));
  const facts: NoticeFacts =
    action.kind === 'reap'
      ? { event: 'key.reaped', keyId: action.keyId, reason: action.reason, deleteOn }
      : {
          event: action.kind === 'enforce' ? 'key.enforced' : 'key.deactivated',
          keyId: action.keyId,
          newKeyId: newKeyId ?? '',
          deleteOn,
        };
  await writePending(
    unit,
    change,
    context,
    facts,
    `${unit.accountId}/${unit.userName}/${action.kind}/${action.keyId}/${isoDay(now)}`,
  );
  await unit.deps.iam.updateAccessKey(unit.userName, action.keyId, 'Inactive');
  recordRetirement(unit, change);
  await unit.write();
}

/** Deletes an inactive key (`delete`, or `make-room` before a rotation). */
export async function deleteKey(
  unit: UnitOfWork,
  action: Extract<PlannedAction, { kind: 'delete' | 'make-room' }>,
  context: NoticeContext,
): Promise<void> {
  const change: PendingRetirement = {
    kind: action.kind,
    keyId: action.keyId,
    reason: action.reason,
    requestedAt: unit.now().toISOString(),
  };
  await writePending(
    unit,
    change,
    context,
    { event: 'key.deleted', keyId: action.keyId, reason: action.reason },
    `${unit.accountId}/${unit.userName}/deleted/${action.keyId}`,
  );
  try {
    await unit.deps.iam.deleteAccessKey(unit.userName, action.keyId);
  } catch (error) {
    // Gone already (a retry after a timed-out delete, or deleted by hand): the outcome we wanted.
    if (!(error instanceof NoSuchKeyError)) throw error;
  }
  recordRetirement(unit, change);
  await unit.write();
}

/**
 * Pending retirements whose answer an earlier run never saw (see the top of this file), settled
 * from the user as IAM shows it now: the change took effect, so it is recorded (as of when it was
 * asked for) and its notice goes out; or it did not, and the entry is dropped (the policy plans the
 * change again if it is still due). Staged; the caller writes.
 */
export function settlePendingRetirements(unit: UnitOfWork, user: UserSnapshot): void {
  for (const entry of unit.record.outbox) {
    const change = entry.awaits;
    if (!change) continue;
    const key = user.keys.find((candidate) => candidate.accessKeyId === change.keyId);
    const done = removesKey(change) ? key === undefined : key?.status === 'Inactive';
    if (done) {
      recordRetirement(unit, change, 'its answer was lost; IAM shows it done');
      continue;
    }
    const what = removesKey(change) ? 'deletion' : 'deactivation';
    const reason = `IAM does not show the ${what} of ${change.keyId} asked for at ${change.requestedAt} (its answer was lost); the policy decides again`;
    unit.stage((record) => withoutEntry(record, change), {
      action: 'ledger.tidied',
      keyId: change.keyId,
      detail: reason,
    });
    unit.log('ledger.tidied', 'success', { keyId: change.keyId, reason });
  }
}

/** Pending retirements dropped with their user (deleted meanwhile: the keys went with it). */
export function dropPendingRetirements(record: UserLedger): UserLedger {
  return { ...record, outbox: record.outbox.filter((entry) => !entry.awaits) };
}

function removesKey(change: PendingRetirement): boolean {
  return change.kind === 'delete' || change.kind === 'make-room';
}

/** The change and its notice, written (with the lock) before IAM is asked: see the top of this file. */
async function writePending(
  unit: UnitOfWork,
  change: PendingRetirement,
  context: NoticeContext,
  facts: NoticeFacts,
  dedupeId: string,
): Promise<void> {
  unit.queueNotice(context, facts, dedupeId, change);
  await unit.write({ lock: true });
}

function isEntryOf(change: PendingRetirement) {
  return (entry: UserLedger['outbox'][number]) =>
    entry.awaits?.kind === change.kind && entry.awaits.keyId === change.keyId;
}

function withoutEntry(record: UserLedger, change: PendingRetirement): UserLedger {
  const matches = isEntryOf(change);
  return { ...record, outbox: record.outbox.filter((entry) => !matches(entry)) };
}

/**
 * The change took effect: the ledger records it (the deletion clock of a deactivated key starts when
 * it was asked for), its notice is released for delivery, and the unit's view of the user follows.
 * Staged; the caller writes.
 */
function recordRetirement(unit: UnitOfWork, change: PendingRetirement, late?: string): void {
  const { keyId, newKeyId } = change;
  const matches = isEntryOf(change);
  const release = (record: UserLedger): UserLedger['outbox'] =>
    record.outbox.map((entry) =>
      matches(entry) ? { id: entry.id, notification: entry.notification } : entry,
    );
  const reason = late ? `${change.reason} (${late})` : change.reason;
  if (removesKey(change)) {
    unit.user = unit.user && {
      ...unit.user,
      keys: unit.user.keys.filter((key) => key.accessKeyId !== keyId),
    };
    unit.stage(
      (record) => ({
        ...record,
        outbox: release(record),
        inactiveSince: without(record.inactiveSince, [keyId]),
        reactivatedSeen: without(record.reactivatedSeen, [keyId]),
        warnedKeys: without(record.warnedKeys, [keyId]),
      }),
      { action: 'key.deleted', keyId, detail: reason },
    );
    unit.log('key.deleted', 'success', { keyId, reason });
    unit.performed.push({ kind: 'delete', keyId, detail: reason });
    return;
  }
  unit.user = unit.user && {
    ...unit.user,
    keys: unit.user.keys.map((key) => (key.accessKeyId === keyId ? { ...key, status: 'Inactive' } : key)),
  };
  const auditAction: AuditAction =
    change.kind === 'reap' ? 'key.reaped' : change.kind === 'enforce' ? 'key.enforced' : 'key.deactivated';
  unit.stage(
    (record) => ({
      ...record,
      outbox: release(record),
      inactiveSince: { ...record.inactiveSince, [keyId]: change.requestedAt },
      reactivatedSeen: without(record.reactivatedSeen, [keyId]),
    }),
    { action: auditAction, keyId, detail: reason },
  );
  unit.log(auditAction, 'success', { keyId, newKeyId, reason });
  unit.performed.push({ kind: change.kind, keyId, newKeyId, detail: reason });
}
