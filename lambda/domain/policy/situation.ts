/**
 * What every rule reads: the policy input and the facts derived from it once (keys by age, active
 * and inactive keys, scope, owner, exemption), and the shape of a rule and of its verdict.
 */
import type { AccessKey } from '../model';
import { Exemption, inScope, OwnerResolution, resolveExemption, resolveOwner } from '../tags';
import type { KeyStage, PlannedAction, PolicyInput } from './types';

export interface Situation extends PolicyInput {
  /** The user's keys, oldest first. */
  readonly keys: readonly AccessKey[];
  readonly active: readonly AccessKey[];
  readonly inactive: readonly AccessKey[];
  /** Ids of the keys the service created (the new key of each recorded rotation). */
  readonly ours: ReadonlySet<string>;
  readonly scoped: boolean;
  readonly owner: OwnerResolution;
  readonly exemption?: Exemption;
}

/** What a rule decides when it applies. */
export interface Verdict {
  readonly actions?: readonly PlannedAction[];
  /** Stages of keys, for the plan's key table (a later rule's stage for the same key wins). */
  readonly stages?: readonly (readonly [keyId: string, stage: KeyStage])[];
  /**
   * Inactive keys this verdict deletes otherwise (make-room): their `track-inactive` and `delete`
   * actions, decided by other rules, are dropped.
   */
  readonly supersedes?: readonly string[];
}

/** One rule: applies to the situation (a verdict) or does not (undefined). Pure. */
export interface PolicyRule {
  readonly name: string;
  /** What the rule decides, in a few words (for the table and the docs). */
  readonly decides: string;
  readonly decide: (situation: Situation) => Verdict | undefined;
}

function byAge(a: AccessKey, b: AccessKey): number {
  return a.createDate.getTime() - b.createDate.getTime() || a.accessKeyId.localeCompare(b.accessKeyId);
}

export function situationOf(input: PolicyInput): Situation {
  const { user, ledger, now, settings } = input;
  const keys = [...user.keys].sort(byAge);
  return {
    ...input,
    keys,
    active: keys.filter((key) => key.status === 'Active'),
    inactive: keys.filter((key) => key.status === 'Inactive'),
    ours: new Set(ledger?.rotations.map((rotation) => rotation.newKeyId) ?? []),
    scoped: inScope(user.path, settings.includePaths, settings.excludePaths),
    owner: resolveOwner(user.tags, settings.ownerTag),
    exemption: resolveExemption(user.tags, settings.exemptionTag, now),
  };
}

/**
 * When an active key was last switched back on by hand, if it was. A key the ledger still marks
 * inactive is being noted as reactivated in this very plan: it was seen active again now, later
 * than any older mark.
 */
export function reactivatedAt({ ledger, now }: Situation, keyId: string): string | undefined {
  return ledger?.inactiveSince[keyId] !== undefined ? now.toISOString() : ledger?.reactivatedSeen[keyId];
}

export function usedSince(key: AccessKey, since: Date): boolean {
  return key.lastUsedDate !== undefined && key.lastUsedDate.getTime() >= since.getTime();
}

export function describeUse(key: AccessKey): string {
  return key.lastUsedDate ? `last used ${key.lastUsedDate.toISOString()}` : 'never used';
}
