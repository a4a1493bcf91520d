/**
 * The rotation policy: given one user's live keys, tags, the ledger's memory and `now`, which actions
 * are due and why. Pure: no I/O, no clock. The service carries out what this returns.
 */
import type { AccessKey, UserLedger, UserSnapshot } from './model';
import type { RotationSettings } from './settings';
import { Exemption, inScope, OwnerResolution, resolveExemption, resolveOwner } from './tags';
import { dayStartAfter, daysBetween, isoDay, maxDate } from './time';

export type PlannedAction =
  /** Finish a rotation (or deliver notices) left half-done by an earlier run. */
  | { readonly kind: 'resume'; readonly reason: string }
  /** Start the deletion clock of a key seen inactive for the first time. */
  | { readonly kind: 'track-inactive'; readonly keyId: string; readonly reason: string }
  /** Drop ledger marks of keys that no longer exist (deleted by hand). */
  | { readonly kind: 'forget'; readonly keyIds: readonly string[]; readonly reason: string }
  /** A key we had deactivated is active again (by hand). */
  | { readonly kind: 'note-reactivated'; readonly keyId: string; readonly reason: string }
  | { readonly kind: 'delete'; readonly keyId: string; readonly reason: string }
  /** Delete an inactive key so that the user has room for the replacement key. */
  | { readonly kind: 'make-room'; readonly keyId: string; readonly reason: string }
  | { readonly kind: 'rotate'; readonly keyId: string; readonly reason: string }
  | {
      readonly kind: 'deactivate';
      readonly keyId: string;
      readonly replacementKeyId: string;
      readonly reason: string;
    }
  | {
      readonly kind: 'postpone';
      readonly keyId: string;
      readonly replacementKeyId: string;
      readonly enforceOn: string;
      readonly reason: string;
    }
  | {
      readonly kind: 'enforce';
      readonly keyId: string;
      readonly replacementKeyId: string;
      readonly reason: string;
    }
  | { readonly kind: 'warn'; readonly keyId: string; readonly rotateOn: string; readonly reason: string }
  | { readonly kind: 'conflict'; readonly keyIds: readonly string[]; readonly reason: string }
  | { readonly kind: 'reap'; readonly keyId: string; readonly reason: string };

export type ActionKind = PlannedAction['kind'];

/** Actions that change IAM. Everything else only writes the ledger or notifies. */
export const KEY_CHANGING_ACTIONS: ReadonlySet<ActionKind> = new Set([
  'delete',
  'make-room',
  'rotate',
  'deactivate',
  'enforce',
  'reap',
]);

export type KeyStage =
  | 'current'
  | 'expiring'
  | 'due'
  | 'in-grace'
  | 'in-use-after-rotation'
  | 'overdue'
  | 'replacement'
  | 'unused'
  | 'inactive'
  | 'delete-due'
  | 'foreign-pair';

export interface KeyAssessment {
  readonly accessKeyId: string;
  readonly status: AccessKey['status'];
  readonly createDate: string;
  readonly ageDays: number;
  readonly lastUsedDate?: string;
  /** True if the service created this key. */
  readonly ours: boolean;
  readonly stage: KeyStage;
  /** For inactive keys: when the deletion clock started. */
  readonly inactiveSince?: string;
}

export interface UserPlan {
  readonly userName: string;
  readonly path: string;
  readonly inScope: boolean;
  readonly owner: OwnerResolution;
  readonly exemption?: Exemption;
  readonly keys: readonly KeyAssessment[];
  readonly actions: readonly PlannedAction[];
  /** Things a human should fix, reported but never fatal (bad tags). */
  readonly findings: readonly string[];
}

export interface PolicyInput {
  readonly user: UserSnapshot;
  readonly ledger?: UserLedger;
  readonly now: Date;
  readonly settings: RotationSettings;
  /**
   * Rotate the single active key now whatever its age (an operator's request, e.g. a leaked key), with
   * this reason. Every other rule still applies: grace, exemption, scope, two-key limits.
   */
  readonly forceRotation?: string;
}

function byAge(a: AccessKey, b: AccessKey): number {
  return a.createDate.getTime() - b.createDate.getTime() || a.accessKeyId.localeCompare(b.accessKeyId);
}

function usedSince(key: AccessKey, since: Date): boolean {
  return key.lastUsedDate !== undefined && key.lastUsedDate.getTime() >= since.getTime();
}

function describeUse(key: AccessKey): string {
  return key.lastUsedDate ? `last used ${key.lastUsedDate.toISOString()}` : 'never used';
}

/** Decides what is due for one user. */
export function planUser({ user, ledger, now, settings, forceRotation }: PolicyInput): UserPlan {
  const keys = [...user.keys].sort(byAge);
  const ours = new Set(ledger?.rotations.map((rotation) => rotation.newKeyId) ?? []);
  const owner = resolveOwner(user.tags, settings.ownerTag);
  const exemption = resolveExemption(user.tags, settings.exemptionTag, now);
  const findings: string[] = [];
  // A missing owner is common and already said in every notice's footer; a malformed one is a mistake to fix.
  if (owner.problem && user.tags[settings.ownerTag] !== undefined) {
    findings.push(`owner: ${owner.problem}; notices go to the default recipients`);
  }
  if (exemption?.problem) findings.push(`exemption: ${exemption.problem}`);
  const stages = new Map<string, KeyStage>();
  const actions: PlannedAction[] = [];
  const scoped = inScope(user.path, settings.includePaths, settings.excludePaths);

  const result = (): UserPlan => ({
    userName: user.userName,
    path: user.path,
    inScope: scoped,
    owner,
    exemption,
    keys: keys.map((key) => {
      const since = ledger?.inactiveSince[key.accessKeyId];
      return {
        accessKeyId: key.accessKeyId,
        status: key.status,
        createDate: key.createDate.toISOString(),
        ageDays: daysBetween(key.createDate, now),
        lastUsedDate: key.lastUsedDate?.toISOString(),
        ours: ours.has(key.accessKeyId),
        stage: stages.get(key.accessKeyId) ?? (key.status === 'Active' ? 'current' : 'inactive'),
        inactiveSince: key.status === 'Inactive' ? since : undefined,
      };
    }),
    actions,
    findings,
  });

  // Our own half-done work comes first, even for a user that has since left the scope or been
  // exempted: a key we created must end stored or deleted (I1). Nothing else is decided until then.
  if (ledger?.inFlight || (ledger?.outbox.length ?? 0) > 0) {
    const what = ledger?.inFlight
      ? `rotation of ${ledger.inFlight.oldKeyId} is in phase ${ledger.inFlight.phase}`
      : `${ledger?.outbox.length} notice(s) not yet delivered`;
    actions.push({ kind: 'resume', reason: `${what}; finishing it before anything else` });
    return result();
  }

  if (!scoped) return result();

  if (exemption?.applies) {
    // I7: an exempt user is never modified, not even its inactive keys.
    return result();
  }

  const active = keys.filter((key) => key.status === 'Active');
  const inactive = keys.filter((key) => key.status === 'Inactive');

  for (const key of active) {
    if (ledger?.inactiveSince[key.accessKeyId] !== undefined) {
      actions.push({
        kind: 'note-reactivated',
        keyId: key.accessKeyId,
        reason: `key was inactive since ${ledger.inactiveSince[key.accessKeyId]} and is active again`,
      });
    }
  }

  const live = new Set(keys.map((key) => key.accessKeyId));
  const gone = [
    ...new Set(
      [ledger?.inactiveSince, ledger?.warnedKeys, ledger?.reactivatedSeen].flatMap((marks) =>
        Object.keys(marks ?? {}).filter((keyId) => !live.has(keyId)),
      ),
    ),
  ];
  if (gone.length > 0) {
    actions.push({
      kind: 'forget',
      keyIds: gone,
      reason: 'keys no longer exist in IAM; their ledger marks are dropped',
    });
  }

  const deletions = new Map<string, PlannedAction>();
  for (const key of inactive) {
    const since = ledger?.inactiveSince[key.accessKeyId];
    if (since === undefined) {
      stages.set(key.accessKeyId, 'inactive');
      actions.push({
        kind: 'track-inactive',
        keyId: key.accessKeyId,
        reason: `inactive key seen for the first time; it will be deleted ${settings.deleteAfterDays} days from now`,
      });
      continue;
    }
    const days = daysBetween(new Date(since), now);
    if (days >= settings.deleteAfterDays) {
      stages.set(key.accessKeyId, 'delete-due');
      deletions.set(key.accessKeyId, {
        kind: 'delete',
        keyId: key.accessKeyId,
        reason: `inactive for ${days} days (since ${since}); deleteAfterDays is ${settings.deleteAfterDays}`,
      });
    }
  }

  if (active.length === 1) {
    planSingleActiveKey(active[0]!, inactive, deletions);
  } else if (active.length === 2) {
    planTwoActiveKeys(active[0]!, active[1]!);
  }
  actions.push(...deletions.values());
  return result();

  function planSingleActiveKey(
    key: AccessKey,
    inactiveKeys: AccessKey[],
    dueDeletions: Map<string, PlannedAction>,
  ) {
    const age = daysBetween(key.createDate, now);
    const reactivated = reactivatedAt(key.accessKeyId);
    // A key switched back on by hand gets one more grace period before it is deactivated again.
    const inReactivationGrace =
      reactivated !== undefined &&
      now.getTime() < dayStartAfter(new Date(reactivated), settings.graceDays).getTime();
    if (settings.reapUnusedDays !== undefined && !inReactivationGrace && forceRotation === undefined) {
      const idleDays = daysBetween(key.lastUsedDate ?? key.createDate, now);
      if (idleDays >= settings.reapUnusedDays) {
        stages.set(key.accessKeyId, 'unused');
        actions.push({
          kind: 'reap',
          keyId: key.accessKeyId,
          reason: `${describeUse(key)}: unused for ${idleDays} days; reapUnusedDays is ${settings.reapUnusedDays}`,
        });
        return;
      }
    }
    if (age >= settings.rotateAfterDays || forceRotation !== undefined) {
      stages.set(key.accessKeyId, age >= settings.maxKeyAgeDays ? 'overdue' : 'due');
      // Only two keys fit; an inactive key may be deleted to make room (I3).
      for (const other of inactiveKeys) {
        dueDeletions.delete(other.accessKeyId);
        const index = actions.findIndex(
          (action) => action.kind === 'track-inactive' && action.keyId === other.accessKeyId,
        );
        if (index >= 0) actions.splice(index, 1);
        actions.push({
          kind: 'make-room',
          keyId: other.accessKeyId,
          reason: `inactive key deleted to make room for the replacement of ${key.accessKeyId}`,
        });
      }
      actions.push({
        kind: 'rotate',
        keyId: key.accessKeyId,
        reason:
          forceRotation !== undefined
            ? `${forceRotation} (key is ${age} days old)`
            : `key is ${age} days old; rotateAfterDays is ${settings.rotateAfterDays}`,
      });
      return;
    }
    const warnFrom = settings.rotateAfterDays - settings.warnDays;
    if (settings.warnDays > 0 && age >= warnFrom) {
      stages.set(key.accessKeyId, 'expiring');
      if (ledger?.warnedKeys[key.accessKeyId] === undefined) {
        const rotateOn = isoDay(dayStartAfter(key.createDate, settings.rotateAfterDays));
        actions.push({
          kind: 'warn',
          keyId: key.accessKeyId,
          rotateOn,
          reason: `key is ${age} days old; it will be rotated on ${rotateOn} (rotateAfterDays ${settings.rotateAfterDays})`,
        });
      }
    }
  }

  /** When an active key was last switched back on by hand, if it was. */
  function reactivatedAt(keyId: string): string | undefined {
    // A key noted as reactivated in this very plan was seen active again now, later than any older mark.
    return ledger?.inactiveSince[keyId] !== undefined ? now.toISOString() : ledger?.reactivatedSeen[keyId];
  }

  function planTwoActiveKeys(older: AccessKey, newer: AccessKey) {
    const rotation = ledger?.rotations.find(
      (entry) => entry.oldKeyId === older.accessKeyId && entry.newKeyId === newer.accessKeyId,
    );
    if (!rotation) {
      // I3: two active keys the service did not pair: report, never guess which one to remove.
      stages.set(older.accessKeyId, 'foreign-pair');
      stages.set(newer.accessKeyId, 'foreign-pair');
      actions.push({
        kind: 'conflict',
        keyIds: [older.accessKeyId, newer.accessKeyId],
        reason:
          'two active keys that the service did not create as a rotation pair; report only, nothing is changed',
      });
      return;
    }
    stages.set(newer.accessKeyId, 'replacement');
    let graceEnd = dayStartAfter(newer.createDate, settings.graceDays);
    const reactivated = reactivatedAt(older.accessKeyId);
    if (reactivated !== undefined) {
      // Someone switched the old key back on; give them one more grace period before acting again.
      graceEnd = maxDate(graceEnd, dayStartAfter(new Date(reactivated), settings.graceDays));
    }
    if (now.getTime() < graceEnd.getTime()) {
      stages.set(older.accessKeyId, 'in-grace');
      return;
    }
    if (!usedSince(older, newer.createDate)) {
      actions.push({
        kind: 'deactivate',
        keyId: older.accessKeyId,
        replacementKeyId: newer.accessKeyId,
        reason: `grace of ${settings.graceDays} days is over and the key was not used since its replacement was created (${describeUse(older)})`,
      });
      return;
    }
    const enforceOn = maxDate(dayStartAfter(older.createDate, settings.maxKeyAgeDays), graceEnd);
    if (now.getTime() >= enforceOn.getTime()) {
      stages.set(older.accessKeyId, 'overdue');
      actions.push({
        kind: 'enforce',
        keyId: older.accessKeyId,
        replacementKeyId: newer.accessKeyId,
        reason: `key is ${daysBetween(older.createDate, now)} days old (maxKeyAgeDays ${settings.maxKeyAgeDays}) and still in use (${describeUse(older)}); deactivated at the hard limit`,
      });
      return;
    }
    stages.set(older.accessKeyId, 'in-use-after-rotation');
    actions.push({
      kind: 'postpone',
      keyId: older.accessKeyId,
      replacementKeyId: newer.accessKeyId,
      enforceOn: isoDay(enforceOn),
      reason: `still in use after its replacement was created (${describeUse(older)}); deactivation postponed, enforced on ${isoDay(enforceOn)}`,
    });
  }
}

/** Whether carrying out the plan would do anything (write IAM, the ledger, or notify). */
export function hasWork(plan: UserPlan): boolean {
  return plan.actions.length > 0;
}
