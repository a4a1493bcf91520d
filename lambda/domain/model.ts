/** The engine's data: what IAM tells us about a user, and what the ledger remembers. Pure types. */

export type KeyStatus = 'Active' | 'Inactive';

export interface AccessKey {
  readonly accessKeyId: string;
  readonly status: KeyStatus;
  readonly createDate: Date;
  /** When the key was last used to sign a request; undefined if never (as far as IAM knows). */
  readonly lastUsedDate?: Date;
}

/** Live state of one IAM user, as read at the start of a unit of work. */
export interface UserSnapshot {
  readonly userName: string;
  readonly arn: string;
  readonly path: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly keys: readonly AccessKey[];
}

/** The only copy of a new key's secret, as CreateAccessKey returns it. Never logged or stored elsewhere. */
export interface NewAccessKey {
  readonly userName: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly createDate: Date;
}

/** Credentials to sign a request with. */
export interface KeyCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** A rotation that has started and not finished. Recorded before CreateAccessKey (I1). */
export interface RotationInFlight {
  readonly oldKeyId: string;
  /** Key ids the user had when the intent was recorded; any other key created after is ours. */
  readonly keysBefore: readonly string[];
  /** `intent`: recorded, CreateAccessKey may or may not have run. `stored`: new key is in the vault. */
  readonly phase: 'intent' | 'stored';
  readonly newKeyId?: string;
  /** ISO time the intent was recorded. */
  readonly startedAt: string;
  readonly reason: string;
}

export interface CompletedRotation {
  readonly oldKeyId: string;
  readonly newKeyId: string;
  /** ISO time the new key was verified and announced. */
  readonly rotatedAt: string;
}

export interface HistoryEntry {
  readonly at: string;
  readonly action: string;
  readonly keyId?: string;
  readonly detail: string;
}

/**
 * A deactivation or deletion asked of IAM whose outcome this service has not seen yet: written (with
 * its notice, see {@link PendingNotice.awaits}) before the call, so that a run that never learns the
 * answer (a timeout, a dropped connection, a crash) leaves the next run enough to finish it: IAM
 * then shows whether it took effect, and it is recorded and announced, or forgotten and planned again.
 */
export interface PendingRetirement {
  /** The policy action: deactivate, enforce and reap make the key Inactive; delete and make-room remove it. */
  readonly kind: 'deactivate' | 'enforce' | 'reap' | 'delete' | 'make-room';
  readonly keyId: string;
  /** The key that replaced it (deactivate, enforce). */
  readonly newKeyId?: string;
  readonly reason: string;
  /** ISO time the call was about to be made: when the key became inactive, if it did. */
  readonly requestedAt: string;
}

/** A notification waiting to be published (outbox): queued in the same write as the state it reports. */
export interface PendingNotice {
  readonly id: string;
  readonly notification: OwnerNotification;
  /**
   * The IAM change this notice reports, not yet seen to take effect: the notice is not published
   * until it is (the entry is then rewritten without it), and dropped if IAM shows it did not.
   */
  readonly awaits?: PendingRetirement;
}

/** Everything the service remembers about one user of one account. */
export interface UserLedger {
  readonly accountId: string;
  readonly userName: string;
  /** Incremented by every write; writes are conditional on it. 0 = not stored yet. */
  readonly version: number;
  readonly lock?: { readonly holder: string; readonly until: string };
  readonly inFlight?: RotationInFlight;
  readonly rotations: readonly CompletedRotation[];
  /** keyId -> ISO time the key became inactive (or was first seen inactive). IAM does not record it. */
  readonly inactiveSince: Readonly<Record<string, string>>;
  /** keyId -> ISO time the owner was warned of the coming rotation. */
  readonly warnedKeys: Readonly<Record<string, string>>;
  /** keyId -> ISO time a key we had deactivated was first seen active again. */
  readonly reactivatedSeen: Readonly<Record<string, string>>;
  /** Dedupe marks for notices that should be sent once (conflicts, bad tags): mark -> ISO time. */
  readonly notices: Readonly<Record<string, string>>;
  readonly outbox: readonly PendingNotice[];
  readonly history: readonly HistoryEntry[];
  /**
   * What the rotator last saw of the user's keys, and the first day anything can be due for them.
   * The planner skips the user while the credential report shows the same keys and that day has not
   * come, so that users in a grace period or waiting for deletion cost nothing daily.
   */
  readonly review?: KeyReview;
}

/** See {@link UserLedger.review}. */
export interface KeyReview {
  /** The keys as the credential report shows them (see domain/review.ts keysFingerprint). */
  readonly keys: string;
  /** ISO time from which the user must be looked at again (a UTC day start). */
  readonly due: string;
  /**
   * ISO time the rotator read these keys live. A credential report generated before then cannot show
   * anything newer than the review (IAM reuses a report for up to four hours), so the planner then
   * goes by the review alone instead of comparing keys.
   */
  readonly seenAt?: string;
  /**
   * The settings the due day was computed under (domain/review.ts settingsDigest): a review made under
   * other settings (a redeploy with a shorter rotateAfterDays, reaping turned on) is ignored.
   */
  readonly settings?: string;
}

export function emptyLedger(accountId: string, userName: string): UserLedger {
  return {
    accountId,
    userName,
    version: 0,
    rotations: [],
    inactiveSince: {},
    warnedKeys: {},
    reactivatedSeen: {},
    notices: {},
    outbox: [],
    history: [],
  };
}

export type NotificationEvent =
  | 'key.expiring'
  | 'key.rotated'
  | 'key.deactivated'
  | 'key.deactivation-postponed'
  | 'key.enforced'
  | 'key.deleted'
  | 'key.reaped'
  | 'key.reactivated'
  | 'keys.conflict'
  | 'secret.conflict'
  | 'tags.invalid'
  | 'owner.subscription-failed'
  /** Organization mode: a member account could not be planned (operators; not about one user). */
  | 'account.unreachable';

/** A message to a key's owner. Names the secret and key ids; never carries secret material. */
export interface OwnerNotification {
  readonly event: NotificationEvent;
  readonly accountId: string;
  readonly userName: string;
  /** Owner's address, or `default` when the user has no valid owner tag (goes to default recipients). */
  readonly owner: string;
  /** Every address the notice is for: the owner tag may name several. [`default`] without an owner. */
  readonly recipients: readonly string[];
  readonly subject: string;
  readonly text: string;
  /** The machine-readable form. */
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
  /** Stable id so that a subscriber can drop a repeat of the same notice. */
  readonly dedupeId: string;
  /** Also for the operators (the ops topic): something a person must fix. */
  readonly toOperators?: boolean;
}
