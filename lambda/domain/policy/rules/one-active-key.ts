/**
 * One active key: reap it if unused (opt-in), else rotate it when old enough (deleting inactive keys
 * to make room), else warn the owner a few days before. The first of these that applies is the one.
 */
import type { AccessKey } from '../../model';
import { dayStartAfter, daysBetween, isoDay, maxDate } from '../../time';
import { describeUse, reactivatedAt, type PolicyRule, type Situation } from '../situation';

function theActiveKey({ active }: Situation): AccessKey | undefined {
  return active.length === 1 ? active[0] : undefined;
}

/** The end of the extra grace a key switched back on by hand gets, if it was. */
function reactivationGraceEnd(situation: Situation, key: AccessKey): Date | undefined {
  const reactivated = reactivatedAt(situation, key.accessKeyId);
  return reactivated === undefined
    ? undefined
    : dayStartAfter(new Date(reactivated), situation.settings.graceDays);
}

/**
 * The first day an active key may be reaped, from its last use known now (a later use only moves
 * it later), and not before the end of a reactivation grace. Undefined when reaping is off.
 */
export function reapDate(situation: Situation, key: AccessKey): Date | undefined {
  const { reapUnusedDays } = situation.settings;
  if (reapUnusedDays === undefined) return undefined;
  const idleFrom = dayStartAfter(key.lastUsedDate ?? key.createDate, reapUnusedDays);
  const graceEnd = reactivationGraceEnd(situation, key);
  return graceEnd ? maxDate(idleFrom, graceEnd) : idleFrom;
}

/** The day a key is due for rotation. */
export function rotationDate(situation: Situation, key: AccessKey): Date {
  return dayStartAfter(key.createDate, situation.settings.rotateAfterDays);
}

/** The day the owner is warned of a key's coming rotation (warnDays before it). */
export function warningDate(situation: Situation, key: AccessKey): Date {
  const { rotateAfterDays, warnDays } = situation.settings;
  return dayStartAfter(key.createDate, rotateAfterDays - warnDays);
}

/**
 * CIS 2.11 (opt-in, reapUnusedDays): an active key never used, or unused for that many days, is
 * deactivated. A key switched back on by hand gets one more grace first; an operator's forced
 * rotation is a rotation, not a reaping.
 */
export const reapUnused: PolicyRule = {
  name: 'unused key',
  decides: 'reap',
  decide: (situation) => {
    const key = theActiveKey(situation);
    const { settings, now, forceRotation } = situation;
    if (!key || settings.reapUnusedDays === undefined || forceRotation !== undefined) return undefined;
    const graceEnd = reactivationGraceEnd(situation, key);
    if (graceEnd !== undefined && now.getTime() < graceEnd.getTime()) return undefined;
    const idleDays = daysBetween(key.lastUsedDate ?? key.createDate, now);
    if (idleDays < settings.reapUnusedDays) return undefined;
    return {
      actions: [
        {
          kind: 'reap',
          keyId: key.accessKeyId,
          reason: `${describeUse(key)}: unused for ${idleDays} days; reapUnusedDays is ${settings.reapUnusedDays}`,
        },
      ],
      stages: [[key.accessKeyId, 'unused']],
    };
  },
};

/**
 * A key rotateAfterDays old (or an operator's forced rotation) is rotated. Only two keys fit: every
 * inactive key is deleted first to make room (I3 allows it for inactive keys).
 */
export const rotateAged: PolicyRule = {
  name: 'key old enough',
  decides: 'make-room, rotate',
  decide: (situation) => {
    const key = theActiveKey(situation);
    const { inactive, now, settings, forceRotation } = situation;
    if (!key) return undefined;
    const age = daysBetween(key.createDate, now);
    if (age < settings.rotateAfterDays && forceRotation === undefined) return undefined;
    return {
      actions: [
        ...inactive.map((other) => ({
          kind: 'make-room' as const,
          keyId: other.accessKeyId,
          reason: `inactive key deleted to make room for the replacement of ${key.accessKeyId}`,
        })),
        {
          kind: 'rotate',
          keyId: key.accessKeyId,
          reason:
            forceRotation !== undefined
              ? `${forceRotation} (key is ${age} days old)`
              : `key is ${age} days old; rotateAfterDays is ${settings.rotateAfterDays}`,
        },
      ],
      stages: [[key.accessKeyId, age >= settings.maxKeyAgeDays ? 'overdue' : 'due']],
      supersedes: inactive.map((other) => other.accessKeyId),
    };
  },
};

/** warnDays before its rotation the owner is told, once (the ledger remembers the warning). */
export const warnExpiring: PolicyRule = {
  name: 'rotation coming',
  decides: 'warn',
  decide: (situation) => {
    const key = theActiveKey(situation);
    const { ledger, now, settings } = situation;
    if (!key || settings.warnDays <= 0) return undefined;
    if (now.getTime() < warningDate(situation, key).getTime()) return undefined;
    const age = daysBetween(key.createDate, now);
    const rotateOn = isoDay(rotationDate(situation, key));
    return {
      actions:
        ledger?.warnedKeys[key.accessKeyId] === undefined
          ? [
              {
                kind: 'warn',
                keyId: key.accessKeyId,
                rotateOn,
                reason: `key is ${age} days old; it will be rotated on ${rotateOn} (rotateAfterDays ${settings.rotateAfterDays})`,
              },
            ]
          : [],
      stages: [[key.accessKeyId, 'expiring']],
    };
  },
};
