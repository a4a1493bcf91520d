/** The policy's vocabulary: what it reads (PolicyInput), what it decides (PlannedAction) and reports. */
import type { AccessKey, UserLedger, UserSnapshot } from '../model';
import type { RotationSettings } from '../settings';
import type { Exemption, OwnerResolution } from '../tags';

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
