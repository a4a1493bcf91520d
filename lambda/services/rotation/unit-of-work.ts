/**
 * One unit of work on one user: the request, the services it calls, the ledger record as last
 * stored and the changes staged on it, the live state as the unit leaves it, the audit log, and
 * what was done. Every ledger write goes through here, so that each phase costs one conditional
 * write: changes that only the ledger needs (a mark, a notice in the outbox) are staged and ride
 * along with the next write, the lock is taken in the same write as the first change that needs it,
 * and released in the unit's last write.
 */
import { NoSuchUserError } from '../../domain/errors';
import type { HistoryEntry, PendingRetirement, UserLedger, UserSnapshot } from '../../domain/model';
import { secretNameFor } from '../../domain/naming';
import { NoticeContext, NoticeFacts, renderNotice } from '../../domain/notices';
import { PlannedAction, planUser, UserPlan } from '../../domain/policy';
import type { RotationSettings } from '../../domain/settings';
import type {
  AccessKeyVault,
  Clock,
  IamDirectory,
  KeyVerifier,
  Logger,
  OwnerNotifier,
  OwnerSubscription,
  RotationLedger,
  SaveOptions,
  SecretRef,
} from '../../ports';
import { audit, AuditAction, describeError } from '../audit';
import { lastUseMatters, readUser, withLastUse } from '../read-user';

export interface RotationOptions {
  /** How long the user's lock is held at most; must exceed the longest rotation. @default 15 min */
  readonly lockLeaseMs: number;
  /** How long to keep trying the new key with STS while IAM propagates it. @default 120 s */
  readonly verifyTimeoutMs: number;
  /** Subscribe an owner (to a topic of their own) when first warning them or rotating. @default true */
  readonly subscribeOwners: boolean;
  /**
   * Owners are reached on topics of their own, so each notice needs to know which owners are
   * subscribed and confirmed. @default the value of subscribeOwners
   */
  readonly ownerTopics?: boolean;
  /** How many history entries the ledger keeps per user. @default 100 */
  readonly historyLimit: number;
}

export const DEFAULT_ROTATION_OPTIONS: RotationOptions = {
  lockLeaseMs: 15 * 60_000,
  verifyTimeoutMs: 120_000,
  subscribeOwners: true,
  historyLimit: 100,
};

export interface RotationDeps {
  readonly iam: IamDirectory;
  readonly verifier: KeyVerifier;
  readonly vault: AccessKeyVault;
  readonly notifier: OwnerNotifier;
  readonly ledger: RotationLedger;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings: RotationSettings;
  readonly secretPrefix: string;
  /** Identifies this unit of work as the lock holder (e.g. the Lambda request id). */
  readonly holderId: string;
  readonly options?: Partial<RotationOptions>;
}

export interface RotateUserRequest {
  readonly accountId: string;
  readonly userName: string;
  readonly dryRun: boolean;
  /** Rotate the active key now whatever its age, with this reason (an operator's request). */
  readonly forceRotation?: string;
}

export interface PerformedAction {
  readonly kind: PlannedAction['kind'] | 'refused' | 'recovered';
  readonly keyId?: string;
  readonly newKeyId?: string;
  readonly detail: string;
}

export interface UserOutcome {
  readonly accountId: string;
  readonly userName: string;
  readonly dryRun: boolean;
  /** `planned`: dry run with actions due; `done`: actions carried out; `nothing-due`; `user-gone`. */
  readonly status: 'planned' | 'done' | 'nothing-due' | 'user-gone';
  readonly plan?: UserPlan;
  readonly performed: readonly PerformedAction[];
  /** Owner addresses that could not be subscribed (the default recipients and operators were told). */
  readonly subscriptionFailures?: readonly string[];
  /** Readers left out of the secret's policy because they do not exist (the admin role): a finding. */
  readonly secretReadersOmitted?: readonly string[];
}

export class UnitOfWork {
  readonly accountId: string;
  readonly userName: string;
  readonly forceRotation?: string;
  readonly performed: PerformedAction[] = [];
  /** Owner addresses that could not be subscribed in this unit of work. */
  readonly subscriptionFailures: string[] = [];
  /** Readers left out of the secret's policy in this unit of work (they do not exist). */
  readonly secretReadersOmitted: string[] = [];
  /** Owner subscriptions looked up in this unit of work (undefined: none recorded), so each is looked up once. */
  readonly subscriptions = new Map<string, OwnerSubscription | undefined>();
  /** The user as this unit leaves it: the live read, with each change made to IAM applied. */
  user?: UserSnapshot;

  /** The record as last stored (version 0: there is none yet). */
  private stored: UserLedger;
  /** The stored record with the changes staged since: what the next write writes. */
  private staged: UserLedger;
  private dirty = false;
  private holdsLock = false;
  /** A write that was to take the lock was sent: it may hold the lock even if its answer was lost. */
  private lockSent = false;

  constructor(
    request: RotateUserRequest,
    readonly deps: RotationDeps,
    readonly options: RotationOptions,
    record: UserLedger,
  ) {
    this.accountId = request.accountId;
    this.userName = request.userName;
    this.forceRotation = request.forceRotation;
    this.stored = record;
    this.staged = record;
  }

  now(): Date {
    return this.deps.clock.now();
  }

  /** The record with every staged change: what the unit knows and will write. */
  get record(): UserLedger {
    return this.staged;
  }

  /** Whether a record of the user is stored (from before this unit of work, or written by it). */
  get hasRecord(): boolean {
    return this.stored.version > 0;
  }

  /** When the user was last read live (the start of the read): the review's `seenAt`. */
  readAt?: Date;

  get locked(): boolean {
    return this.holdsLock;
  }

  /** Whether changes are staged that no write has carried yet. */
  get pending(): boolean {
    return this.dirty;
  }

  // ---------------------------------------------------------------------------------------------
  // Live state and the plan

  /**
   * Reads the user live and plans. Last-used dates are read only when the plan could depend on them
   * (see lastUseMatters); undefined if the user no longer exists.
   */
  async readAndPlan(): Promise<{ user: UserSnapshot; plan: UserPlan } | undefined> {
    let user: UserSnapshot;
    // A credential report generated before this instant cannot show anything this read does not.
    this.readAt = this.now();
    try {
      user = await readUser(this.deps.iam, this.userName, { lastUse: false });
    } catch (error) {
      if (error instanceof NoSuchUserError) return undefined;
      throw error;
    }
    if (lastUseMatters(this.policyInput(user))) user = await withLastUse(this.deps.iam, user);
    this.user = user;
    return { user, plan: planUser(this.policyInput(user)) };
  }

  private policyInput(user: UserSnapshot) {
    return {
      user,
      ledger: this.staged,
      now: this.now(),
      settings: this.deps.settings,
      forceRotation: this.forceRotation,
    };
  }

  secretRef(user: Pick<UserSnapshot, 'arn'>): SecretRef {
    return {
      accountId: this.accountId,
      userName: this.userName,
      name: secretNameFor(this.deps.secretPrefix, this.accountId, this.userName),
      userArn: user.arn,
    };
  }

  noticeContext(plan: Pick<UserPlan, 'owner'>, user: Pick<UserSnapshot, 'arn'>): NoticeContext {
    return {
      accountId: this.accountId,
      userName: this.userName,
      owner: plan.owner.owner,
      recipients: plan.owner.recipients,
      secretName: this.secretRef(user).name,
      ownerProblem: plan.owner.problem,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // The ledger

  /** Stages a change (and a history entry) for the next write. */
  stage(change: (record: UserLedger) => UserLedger, history?: Omit<HistoryEntry, 'at'>): void {
    let next = change(this.staged);
    if (history) {
      const entry: HistoryEntry = { at: this.now().toISOString(), ...history };
      next = { ...next, history: [...next.history, entry].slice(-this.options.historyLimit) };
    }
    this.staged = next;
    this.dirty = true;
  }

  /**
   * Stages a notice in the outbox: it is written with the state it reports, and published after
   * (see announce.ts), so that a crash in between delivers it on the next run.
   */
  queueNotice(
    context: NoticeContext,
    facts: NoticeFacts,
    dedupeId: string,
    awaits?: PendingRetirement,
  ): void {
    const notification = renderNotice(context, facts, dedupeId);
    const entry = { id: dedupeId, notification, ...(awaits ? { awaits } : {}) };
    this.stage((record) => ({ ...record, outbox: [...record.outbox, entry] }));
  }

  /**
   * Writes the staged record, conditionally on the stored version. `lock`: take the lock in the same
   * write (kept by every later write of the unit); `release`: release it in the same write.
   */
  async write({ lock = false, release = false }: { lock?: boolean; release?: boolean } = {}): Promise<void> {
    const take = lock && !this.holdsLock;
    const give = release && this.holdsLock;
    const options: SaveOptions = {
      ...(take
        ? {
            lock: {
              holder: this.deps.holderId,
              until: new Date(this.now().getTime() + this.options.lockLeaseMs),
            },
          }
        : {}),
      ...(give ? { release: this.deps.holderId } : {}),
    };
    if (take) this.lockSent = true;
    this.stored = await this.deps.ledger.save(this.staged, options);
    this.staged = this.stored;
    this.dirty = false;
    if (take) this.holdsLock = true;
    if (give) this.holdsLock = false;
  }

  /**
   * Takes the lock before a change to IAM or the vault, in one write with whatever is staged: the
   * change must not race another run (a forced rotation, the CLI next to the schedule).
   */
  async takeLock(): Promise<void> {
    if (!this.holdsLock) await this.write({ lock: true });
  }

  /** After a failure: the lock goes now rather than with its lease (best effort; the first error wins). */
  async releaseAfterFailure(): Promise<void> {
    if (!this.lockSent) return;
    try {
      await this.deps.ledger.releaseLock(this.accountId, this.userName, this.deps.holderId);
      this.holdsLock = false;
    } catch (error) {
      this.deps.logger.warn('could not release the user lock; it expires with its lease', {
        userName: this.userName,
        error: describeError(error),
      });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Audit and outcome

  log(
    action: AuditAction,
    outcome: 'success' | 'skipped' | 'failure',
    fields: { reason: string; keyId?: string; newKeyId?: string; [extra: string]: unknown },
  ): void {
    audit(this.deps.logger, {
      action,
      accountId: this.accountId,
      userName: this.userName,
      dryRun: false,
      outcome,
      ...fields,
    });
  }

  outcome(status: UserOutcome['status'], plan?: UserPlan): UserOutcome {
    return {
      accountId: this.accountId,
      userName: this.userName,
      dryRun: false,
      status,
      plan,
      performed: this.performed,
      subscriptionFailures: this.subscriptionFailures,
      secretReadersOmitted: this.secretReadersOmitted,
    };
  }
}

/** Key marks without those of the keys given. */
export function without<T>(marks: Readonly<Record<string, T>>, keyIds: readonly string[]): Record<string, T> {
  const copy = { ...marks };
  for (const keyId of keyIds) delete copy[keyId];
  return copy;
}
