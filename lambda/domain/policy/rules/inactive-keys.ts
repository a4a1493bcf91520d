/** Inactive keys: their deletion clock starts when first seen inactive; deletion when it runs out. */
import type { PolicyRule } from '../situation';
import type { PlannedAction } from '../types';
import type { RotationSettings } from '../../settings';
import { dayStartAfter, daysBetween } from '../../time';

/** IAM does not record when a key became inactive: the ledger does, from the first time it is seen so. */
export const trackInactive: PolicyRule = {
  name: 'inactive key first seen',
  decides: 'track-inactive',
  decide: ({ inactive, ledger, settings }) => {
    const untracked = inactive.filter((key) => ledger?.inactiveSince[key.accessKeyId] === undefined);
    if (untracked.length === 0) return undefined;
    return {
      actions: untracked.map((key) => ({
        kind: 'track-inactive',
        keyId: key.accessKeyId,
        reason: `inactive key seen for the first time; it will be deleted ${settings.deleteAfterDays} days from now`,
      })),
      stages: untracked.map((key) => [key.accessKeyId, 'inactive'] as const),
    };
  },
};

/** The first day an inactive key may be deleted: deleteAfterDays after its deletion clock started. */
export function deletionDate(inactiveSince: string, settings: RotationSettings): Date {
  return dayStartAfter(new Date(inactiveSince), settings.deleteAfterDays);
}

/** An inactive key is deleted deleteAfterDays after it became inactive (not after it was created). */
export const deleteInactive: PolicyRule = {
  name: 'inactive long enough',
  decides: 'delete',
  decide: ({ inactive, ledger, now, settings }) => {
    const due: { keyId: string; action: PlannedAction }[] = [];
    for (const key of inactive) {
      const since = ledger?.inactiveSince[key.accessKeyId];
      if (since === undefined) continue;
      const days = daysBetween(new Date(since), now);
      if (days < settings.deleteAfterDays) continue;
      due.push({
        keyId: key.accessKeyId,
        action: {
          kind: 'delete',
          keyId: key.accessKeyId,
          reason: `inactive for ${days} days (since ${since}); deleteAfterDays is ${settings.deleteAfterDays}`,
        },
      });
    }
    if (due.length === 0) return undefined;
    return {
      actions: due.map((entry) => entry.action),
      stages: due.map((entry) => [entry.keyId, 'delete-due'] as const),
    };
  },
};
