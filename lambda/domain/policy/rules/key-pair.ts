/**
 * Two active keys. Ours (a recorded rotation old -> new): the old key waits out the grace, then is
 * deactivated if unused since the new key was created, else postponed with a reminder until the
 * hard limit, where it is enforced. Not ours: reported, never guessed at (I3). Exactly one applies.
 */
import type { AccessKey, CompletedRotation } from '../../model';
import { dayStartAfter, daysBetween, isoDay, maxDate } from '../../time';
import { describeUse, reactivatedAt, usedSince, type PolicyRule, type Situation } from '../situation';

export interface KeyPair {
  readonly older: AccessKey;
  readonly newer: AccessKey;
  /** The ledger's record of the rotation older -> newer; undefined for a foreign pair. */
  readonly rotation?: CompletedRotation;
}

export interface RotationPair extends KeyPair {
  readonly rotation: CompletedRotation;
  /** The first day the old key may be deactivated. */
  readonly graceEnd: Date;
  /** The day the old key is deactivated in use or not (never before the grace ends). */
  readonly enforceOn: Date;
}

export function keyPairOf({ active, ledger }: Situation): KeyPair | undefined {
  if (active.length !== 2) return undefined;
  const [older, newer] = active as [AccessKey, AccessKey];
  const rotation = ledger?.rotations.find(
    (entry) => entry.oldKeyId === older.accessKeyId && entry.newKeyId === newer.accessKeyId,
  );
  return { older, newer, rotation };
}

/** Our rotation pair with its dates, if the user's two active keys are one. */
export function rotationPairOf(situation: Situation): RotationPair | undefined {
  const pair = keyPairOf(situation);
  if (!pair?.rotation) return undefined;
  const { older, newer, rotation } = pair;
  const { settings } = situation;
  let graceEnd = dayStartAfter(newer.createDate, settings.graceDays);
  const reactivated = reactivatedAt(situation, older.accessKeyId);
  if (reactivated !== undefined) {
    // Someone switched the old key back on; give them one more grace period before acting again.
    graceEnd = maxDate(graceEnd, dayStartAfter(new Date(reactivated), settings.graceDays));
  }
  const enforceOn = maxDate(dayStartAfter(older.createDate, settings.maxKeyAgeDays), graceEnd);
  return { older, newer, rotation, graceEnd, enforceOn };
}

/** Our pair once the grace is over, and whether the old key was used since its replacement was created. */
function afterGrace(situation: Situation): (RotationPair & { readonly inUse: boolean }) | undefined {
  const pair = rotationPairOf(situation);
  if (!pair || situation.now.getTime() < pair.graceEnd.getTime()) return undefined;
  return { ...pair, inUse: usedSince(pair.older, pair.newer.createDate) };
}

/** I3: two active keys the service did not pair: report, never guess which one to remove. */
export const foreignPair: PolicyRule = {
  name: 'two keys not ours',
  decides: 'conflict',
  decide: (situation) => {
    const pair = keyPairOf(situation);
    if (!pair || pair.rotation) return undefined;
    const { older, newer } = pair;
    return {
      actions: [
        {
          kind: 'conflict',
          keyIds: [older.accessKeyId, newer.accessKeyId],
          reason:
            'two active keys that the service did not create as a rotation pair; report only, nothing is changed',
        },
      ],
      stages: [
        [older.accessKeyId, 'foreign-pair'],
        [newer.accessKeyId, 'foreign-pair'],
      ],
    };
  },
};

/** During the grace both keys work, so that the workload can switch at its own pace. */
export const pairInGrace: PolicyRule = {
  name: 'grace period',
  decides: 'nothing',
  decide: (situation) => {
    const pair = rotationPairOf(situation);
    if (!pair || situation.now.getTime() >= pair.graceEnd.getTime()) return undefined;
    return {
      stages: [
        [pair.newer.accessKeyId, 'replacement'],
        [pair.older.accessKeyId, 'in-grace'],
      ],
    };
  },
};

/** I2: after the grace, the old key is deactivated only if unused since its replacement was created. */
export const deactivateOld: PolicyRule = {
  name: 'grace over, old key unused',
  decides: 'deactivate',
  decide: (situation) => {
    const pair = afterGrace(situation);
    if (!pair || pair.inUse) return undefined;
    const { older, newer } = pair;
    return {
      actions: [
        {
          kind: 'deactivate',
          keyId: older.accessKeyId,
          replacementKeyId: newer.accessKeyId,
          reason: `grace of ${situation.settings.graceDays} days is over and the key was not used since its replacement was created (${describeUse(older)})`,
        },
      ],
      stages: [[newer.accessKeyId, 'replacement']],
    };
  },
};

/** At maxKeyAgeDays (and never before the grace ends) the old key is deactivated, in use or not. */
export const enforceOld: PolicyRule = {
  name: 'hard limit',
  decides: 'enforce',
  decide: (situation) => {
    const pair = afterGrace(situation);
    const { now, settings } = situation;
    if (!pair?.inUse || now.getTime() < pair.enforceOn.getTime()) return undefined;
    const { older, newer } = pair;
    return {
      actions: [
        {
          kind: 'enforce',
          keyId: older.accessKeyId,
          replacementKeyId: newer.accessKeyId,
          reason: `key is ${daysBetween(older.createDate, now)} days old (maxKeyAgeDays ${settings.maxKeyAgeDays}) and still in use (${describeUse(older)}); deactivated at the hard limit`,
        },
      ],
      stages: [
        [newer.accessKeyId, 'replacement'],
        [older.accessKeyId, 'overdue'],
      ],
    };
  },
};

/** Still in use after the grace and before the hard limit: deactivation postponed, owner reminded. */
export const postponeOld: PolicyRule = {
  name: 'old key still in use',
  decides: 'postpone',
  decide: (situation) => {
    const pair = afterGrace(situation);
    if (!pair?.inUse || situation.now.getTime() >= pair.enforceOn.getTime()) return undefined;
    const { older, newer } = pair;
    const enforceOn = isoDay(pair.enforceOn);
    return {
      actions: [
        {
          kind: 'postpone',
          keyId: older.accessKeyId,
          replacementKeyId: newer.accessKeyId,
          enforceOn,
          reason: `still in use after its replacement was created (${describeUse(older)}); deactivation postponed, enforced on ${enforceOn}`,
        },
      ],
      stages: [
        [newer.accessKeyId, 'replacement'],
        [older.accessKeyId, 'in-use-after-rotation'],
      ],
    };
  },
};
