/**
 * Announce: the last step of a rotation, and the close of every unit of work.
 *
 * - The rotation is recorded as done and its notice queued in the outbox, in one write (the lock is
 *   kept, so that no other run publishes the same notice meanwhile).
 * - Every queued notice is published; one last write then removes them from the outbox, records the
 *   review (when the user is next worth a look) and releases the lock. A notice SNS took whose
 *   removal was not written goes out again on the next run, with the same dedupe id.
 */
import type { AccessKey, UserSnapshot } from '../../domain/model';
import type { NotCovered } from '../../domain/notices';
import type { UserPlan } from '../../domain/policy';
import { nextReview } from '../../domain/review';
import type { RotationSettings } from '../../domain/settings';
import { inScope, resolveExemption } from '../../domain/tags';
import { dayStartAfter, isoDay, maxDate } from '../../domain/time';
import { deliverNotices } from './outbox';
import type { UnitOfWork } from './unit-of-work';

/**
 * Whether the service leaves the user alone after this rotation, as the policy decides it (scope
 * first, then the exemption), and why. Such a rotation was in flight before (the policy only resumes
 * it, I1/I7): its notice must not promise a deactivation that will never come. Settings that leave
 * every path out (no includePaths, or `/` excluded: how the rotator finishes the work of an account
 * the organization run no longer covers) mean that the account as a whole is no longer covered.
 */
export function notCoveredBy(
  user: Pick<UserSnapshot, 'path' | 'tags'>,
  settings: Pick<RotationSettings, 'includePaths' | 'excludePaths' | 'exemptionTag'>,
  now: Date,
): NotCovered | undefined {
  if (!inScope(user.path, settings.includePaths, settings.excludePaths)) {
    const noPath = settings.includePaths.length === 0 || settings.excludePaths.includes('/');
    return noPath ? { why: 'account' } : { why: 'path', path: user.path };
  }
  const exemption = resolveExemption(user.tags, settings.exemptionTag, now);
  if (exemption?.applies) {
    return {
      why: 'exempt',
      reason: exemption.reason,
      ...(exemption.until ? { until: isoDay(exemption.until) } : {}),
    };
  }
  return undefined;
}

/** The new key is proven and current: the rotation is complete, in one write with its notice. */
export async function announceRotation(
  unit: UnitOfWork,
  plan: Pick<UserPlan, 'owner'>,
  user: UserSnapshot,
  newKey: Pick<AccessKey, 'accessKeyId' | 'createDate'>,
  oldKey: AccessKey | undefined,
  verifyAttempts: number,
): Promise<void> {
  const inFlight = unit.record.inFlight!;
  const settings = unit.deps.settings;
  const deactivateFrom = dayStartAfter(newKey.createDate, settings.graceDays);
  const enforceOn = oldKey
    ? maxDate(dayStartAfter(oldKey.createDate, settings.maxKeyAgeDays), deactivateFrom)
    : deactivateFrom;
  const now = unit.now();
  const notCovered = notCoveredBy(user, settings, now);
  unit.stage(
    (record) => ({
      ...record,
      inFlight: undefined,
      rotations: [
        ...record.rotations,
        { oldKeyId: inFlight.oldKeyId, newKeyId: newKey.accessKeyId, rotatedAt: now.toISOString() },
      ].slice(-20),
    }),
    {
      action: 'key.rotated',
      keyId: newKey.accessKeyId,
      detail: `replaces ${inFlight.oldKeyId}; ${inFlight.reason}`,
    },
  );
  unit.queueNotice(
    unit.noticeContext(plan, user),
    {
      event: 'key.rotated',
      oldKeyId: inFlight.oldKeyId,
      newKeyId: newKey.accessKeyId,
      deactivateFrom: isoDay(deactivateFrom),
      enforceOn: isoDay(enforceOn),
      ...(notCovered ? { notCovered } : {}),
    },
    `${unit.accountId}/${unit.userName}/rotated/${newKey.accessKeyId}`,
  );
  await unit.write({ lock: true });
  unit.log('key.rotated', 'success', {
    keyId: inFlight.oldKeyId,
    newKeyId: newKey.accessKeyId,
    reason: inFlight.reason,
    secretName: unit.secretRef(user).name,
    verifyAttempts,
    // The service will not deactivate the old key: the owner was told to retire it.
    ...(notCovered ? { covered: false, notCovered: notCovered.why } : {}),
  });
  unit.performed.push({
    kind: 'rotate',
    keyId: inFlight.oldKeyId,
    newKeyId: newKey.accessKeyId,
    detail: inFlight.reason,
  });
}

/**
 * Closes the unit of work: notices still staged are written first (taking the lock, so that the
 * publication is this run's alone), then published, then the unit's last write clears them and
 * carries the review and the lock's release. With nothing to deliver, staged changes and the review
 * go out in one write; with nothing changed at all, nothing is written.
 *
 * `plan`: what the unit carried out, for the review (none when the user is gone, or for a repair
 * that the unit then continues). `release`: false while the unit goes on after this (a repair).
 */
export async function finishUnit(
  unit: UnitOfWork,
  { plan, release = true }: { plan?: UserPlan; release?: boolean } = {},
): Promise<void> {
  if (unit.record.outbox.length > 0) {
    // Even with nothing else to write (notices left by an earlier run): two runs resuming the same
    // outbox must not both publish it (I5).
    if (unit.pending || !unit.locked) await unit.write({ lock: true });
    await deliverNotices(unit);
  }
  if (plan && unit.user) stageReview(unit, plan, unit.user);
  if (unit.pending || (release && unit.locked)) await unit.write({ release });
}

/**
 * Records when the user is next worth a look (domain/review.ts), computed on the state the unit
 * leaves behind, if it changed. A user the service leaves alone (exempt, out of scope) and has no
 * record of gets none for a review alone: nothing is written about them (I7).
 */
function stageReview(unit: UnitOfWork, plan: UserPlan, user: UserSnapshot): void {
  if (!unit.hasRecord && !unit.pending && (plan.exemption?.applies || !plan.inScope)) return;
  const review = nextReview(
    { user, ledger: unit.record, now: unit.now(), settings: unit.deps.settings },
    unit.readAt,
  );
  const stored = unit.record.review;
  if (stored?.keys === review.keys && stored.due === review.due && stored.settings === review.settings) {
    return;
  }
  unit.stage((record) => ({ ...record, review }));
}
