/**
 * Rotate one user: take the user's lock, finish any half-done work, read live state, decide with the
 * pure policy, act, record, notify. Every step is safe to repeat (I5): a second run after a crash or
 * a redelivery finds the ledger and IAM in a state it knows how to continue from.
 */
import {
  CredentialsNotYetValidError,
  KeyRotationError,
  NoSuchKeyError,
  NoSuchUserError,
  ThrottledError,
  TransientServiceError,
  VerificationError,
} from '../domain/errors';
import type { AccessKey, HistoryEntry, NewAccessKey, UserLedger, UserSnapshot } from '../domain/model';
import { secretNameFor } from '../domain/naming';
import { NoticeContext, NoticeFacts, renderNotice } from '../domain/notices';
import { PlannedAction, planUser, UserPlan } from '../domain/policy';
import type { RotationSettings } from '../domain/settings';
import { DEFAULT_OWNER, resolveOwner } from '../domain/tags';
import { dayStartAfter, isoDay, maxDate } from '../domain/time';
import type {
  AccessKeyVault,
  Clock,
  IamDirectory,
  KeyVerifier,
  Logger,
  OwnerNotifier,
  RotationLedger,
  SecretRef,
} from '../ports';
import { audit, AuditAction, describeError } from './audit';
import { readUser } from './read-user';

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

/** A confirmed owner subscription is trusted this long before SNS is asked again (owners may unsubscribe). */
const CONFIRMED_TRUST_MS = 30 * 24 * 3_600_000;
/** SNS confirmation links are valid for three days: an owner is not asked again sooner. */
const RESUBSCRIBE_AFTER_MS = 3 * 24 * 3_600_000;

/** How long after recording an intent CreateAccessKey can still take effect (SDK retries included). */
const ORPHAN_WINDOW_MS = 5 * 60_000;

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

/** Rotates (or, with `dryRun`, plans) one user. Throws on failure so that the message is retried. */
export async function rotateUser(request: RotateUserRequest, deps: RotationDeps): Promise<UserOutcome> {
  if (request.dryRun) return planOnly(request, deps);
  const options = { ...DEFAULT_ROTATION_OPTIONS, ...deps.options };
  const now = deps.clock.now();
  const record = await deps.ledger.acquireLock(
    request.accountId,
    request.userName,
    deps.holderId,
    now,
    new Date(now.getTime() + options.lockLeaseMs),
  );
  const run = new UserRotation(request, deps, options, record);
  let outcome: UserOutcome;
  try {
    outcome = await run.execute();
  } catch (error) {
    audit(deps.logger, {
      action: 'rotation.failed',
      accountId: request.accountId,
      userName: request.userName,
      reason: describeError(error).message,
      error: describeError(error),
      dryRun: false,
      outcome: 'failure',
    });
    await releaseLock(request, deps).catch(() => undefined); // reported inside; the first error wins
    throw error;
  }
  await releaseLock(request, deps);
  return outcome;
}

async function releaseLock(request: RotateUserRequest, deps: RotationDeps): Promise<void> {
  try {
    await deps.ledger.releaseLock(request.accountId, request.userName, deps.holderId);
  } catch (error) {
    deps.logger.warn('could not release the user lock; it expires with its lease', {
      userName: request.userName,
      error: describeError(error),
    });
    throw error;
  }
}

async function planOnly(request: RotateUserRequest, deps: RotationDeps): Promise<UserOutcome> {
  const { accountId, userName } = request;
  const record = await deps.ledger.load(accountId, userName);
  let user: UserSnapshot;
  try {
    user = await readUser(deps.iam, userName);
  } catch (error) {
    if (error instanceof NoSuchUserError)
      return { accountId, userName, dryRun: true, status: 'user-gone', performed: [] };
    throw error;
  }
  const plan = planUser({
    user,
    ledger: record,
    now: deps.clock.now(),
    settings: deps.settings,
    forceRotation: request.forceRotation,
  });
  for (const action of plan.actions) {
    audit(deps.logger, {
      action: 'user.planned',
      accountId,
      userName,
      ...actionKeys(action),
      planned: action.kind,
      reason: action.reason,
      dryRun: true,
      outcome: 'planned',
    });
  }
  return {
    accountId,
    userName,
    dryRun: true,
    status: plan.actions.length > 0 ? 'planned' : 'nothing-due',
    plan,
    performed: [],
  };
}

function actionKeys(action: PlannedAction): { keyId?: string; newKeyId?: string } {
  if ('keyId' in action) {
    return 'replacementKeyId' in action
      ? { keyId: action.keyId, newKeyId: action.replacementKeyId }
      : { keyId: action.keyId };
  }
  if ('keyIds' in action) return { keyId: action.keyIds.join(',') };
  return {};
}

/** One unit of work on one user, holding the user's lock and the latest stored ledger record. */
class UserRotation {
  private readonly accountId: string;
  private readonly userName: string;
  private readonly forceRotation?: string;
  private readonly performed: PerformedAction[] = [];
  /** Owner addresses that could not be subscribed in this unit of work. */
  private readonly subscriptionFailures: string[] = [];
  /** Readers left out of the secret's policy in this unit of work (they do not exist). */
  private readonly secretReadersOmitted: string[] = [];

  constructor(
    request: RotateUserRequest,
    private readonly deps: RotationDeps,
    private readonly options: RotationOptions,
    private record: UserLedger,
  ) {
    this.accountId = request.accountId;
    this.userName = request.userName;
    this.forceRotation = request.forceRotation;
  }

  async execute(): Promise<UserOutcome> {
    let user = await this.readLiveUser();
    if (!user) return this.outcome('user-gone');
    let plan = this.plan(user);
    if (plan.actions.some((action) => action.kind === 'resume')) {
      await this.resume(user);
      user = await this.readLiveUser();
      if (!user) return this.outcome('user-gone');
      plan = this.plan(user);
    }
    if (plan.findings.length > 0) await this.reportFindings(plan, user);
    try {
      for (const action of plan.actions) {
        await this.carryOut(action, user, plan);
      }
    } catch (error) {
      // Deleted while we worked on it: its keys went with it; nothing to retry.
      if (!(error instanceof NoSuchUserError)) throw error;
      await this.userGone();
      return this.outcome('user-gone', plan);
    }
    return this.outcome(this.performed.length > 0 || plan.actions.length > 0 ? 'done' : 'nothing-due', plan);
  }

  private outcome(status: UserOutcome['status'], plan?: UserPlan): UserOutcome {
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

  private plan(user: UserSnapshot): UserPlan {
    return planUser({
      user,
      ledger: this.record,
      now: this.deps.clock.now(),
      settings: this.deps.settings,
      forceRotation: this.forceRotation,
    });
  }

  /** Live state, or undefined if the user no longer exists (then any rotation in flight is moot). */
  private async readLiveUser(): Promise<UserSnapshot | undefined> {
    try {
      return await readUser(this.deps.iam, this.userName);
    } catch (error) {
      if (!(error instanceof NoSuchUserError)) throw error;
      await this.userGone();
      return undefined;
    }
  }

  /** The user no longer exists: drop any rotation in flight (its keys went with it), deliver notices. */
  private async userGone(): Promise<void> {
    this.log('rotation.skipped', 'skipped', { reason: 'the IAM user no longer exists' });
    if (this.record.inFlight) {
      await this.update((record) => ({ ...record, inFlight: undefined }), {
        action: 'rotation.abandoned',
        detail: 'user deleted during the rotation; its keys went with it',
      });
    }
    await this.deliverNotices();
  }

  private secretRef(user: UserSnapshot): SecretRef {
    return {
      accountId: this.accountId,
      userName: this.userName,
      name: secretNameFor(this.deps.secretPrefix, this.accountId, this.userName),
      userArn: user.arn,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Ledger and notices

  private async update(
    change: (record: UserLedger) => UserLedger,
    history?: Omit<HistoryEntry, 'at'>,
  ): Promise<void> {
    let next = change(this.record);
    if (history) {
      const entry: HistoryEntry = { at: this.deps.clock.now().toISOString(), ...history };
      next = { ...next, history: [...next.history, entry].slice(-this.options.historyLimit) };
    }
    this.record = await this.deps.ledger.save(next);
  }

  private noticeContext(plan: Pick<UserPlan, 'owner'>, user: UserSnapshot): NoticeContext {
    return {
      accountId: this.accountId,
      userName: this.userName,
      owner: plan.owner.owner,
      recipients: plan.owner.recipients,
      secretName: this.secretRef(user).name,
      ownerProblem: plan.owner.problem,
    };
  }

  /** Queues a notice in the same ledger write as the state it reports (outbox), then delivers it. */
  private queueNotice(
    record: UserLedger,
    context: NoticeContext,
    facts: NoticeFacts,
    dedupeId: string,
  ): UserLedger {
    const notification = renderNotice(context, facts, dedupeId);
    return { ...record, outbox: [...record.outbox, { id: dedupeId, notification }] };
  }

  /** Publishes every queued notice; each is removed from the outbox only after SNS accepted it. */
  private async deliverNotices(): Promise<void> {
    for (const pending of [...this.record.outbox]) {
      const reachable = await this.reachableOwners(pending.notification.recipients);
      const { undeliveredOwners } = await this.deps.notifier.publish(pending.notification, reachable);
      await this.update((record) => ({
        ...record,
        outbox: record.outbox.filter((entry) => entry.id !== pending.id),
      }));
      this.log('notice.sent', 'success', {
        reason: pending.notification.subject,
        event: pending.notification.event,
        owner: pending.notification.owner,
        ...(undeliveredOwners.length > 0 ? { undeliveredOwners } : {}),
      });
    }
  }

  /**
   * Subscribes the owners, each to a topic of their own, once: the ledger remembers who is subscribed,
   * so nobody pages through SNS subscriptions to find out. A refused address or a throttled call must
   * not hold up a rotation (the key would age past the limit): the default recipients and the
   * operators are told, naming the owner (at most once a day per user and address), and the owner's
   * notices reach the default recipients until a later attempt succeeds.
   */
  private async subscribeOwners(plan: Pick<UserPlan, 'owner'>, user: UserSnapshot): Promise<void> {
    if (!this.options.subscribeOwners) return;
    for (const address of plan.owner.recipients) {
      if (address === DEFAULT_OWNER) continue;
      try {
        if (await this.deps.ledger.findOwnerSubscription(address)) continue;
        const subscription = await this.deps.notifier.ensureSubscribed(address);
        await this.deps.ledger.recordOwnerSubscription({
          ...subscription,
          subscribedAt: this.deps.clock.now().toISOString(),
        });
      } catch (error) {
        await this.reportSubscriptionFailure(plan, user, address, error);
      }
    }
  }

  /**
   * The recipients that will receive a notice on their own topic: subscribed and confirmed. The
   * default recipients get the copy of every other owner, so that nobody is left unaware. Best effort:
   * a failed look-up only sends that owner's copy to the default recipients.
   */
  private async reachableOwners(recipients: readonly string[]): Promise<string[]> {
    if (!(this.options.ownerTopics ?? this.options.subscribeOwners)) return [...recipients];
    const reachable: string[] = [];
    for (const address of recipients) {
      if (address === DEFAULT_OWNER) continue;
      try {
        if (await this.ownerReachable(address)) reachable.push(address);
      } catch (error) {
        this.deps.logger.warn(
          'could not tell whether the owner is subscribed; the default recipients get the notice',
          {
            owner: address,
            error: describeError(error),
          },
        );
      }
    }
    return reachable;
  }

  private async ownerReachable(address: string): Promise<boolean> {
    const { ledger, notifier, clock } = this.deps;
    const known = await ledger.findOwnerSubscription(address);
    if (!known) return false;
    const now = clock.now();
    const since = (iso: string): number => now.getTime() - new Date(iso).getTime();
    if (known.confirmedAt && since(known.confirmedAt) < CONFIRMED_TRUST_MS) return true;
    const state = await notifier.subscriptionState(address);
    if (state === 'confirmed') {
      await ledger.recordOwnerSubscription({ ...known, confirmedAt: now.toISOString() });
      return true;
    }
    if (
      state === 'none' &&
      this.options.subscribeOwners &&
      since(known.subscribedAt) >= RESUBSCRIBE_AFTER_MS
    ) {
      // Never confirmed in time, unsubscribed, or the topic was deleted: ask the owner again.
      const again = await notifier.ensureSubscribed(address);
      await ledger.recordOwnerSubscription({ ...again, subscribedAt: now.toISOString() });
      this.log('owner.resubscribed', 'success', {
        reason: `${address} had no confirmed subscription; a new confirmation e-mail was sent`,
        owner: address,
      });
    }
    return false;
  }

  private async reportSubscriptionFailure(
    plan: Pick<UserPlan, 'owner'>,
    user: UserSnapshot,
    address: string,
    error: unknown,
  ): Promise<void> {
    const problem = describeError(error).message;
    this.subscriptionFailures.push(address);
    this.log('owner.unsubscribed', 'failure', {
      reason: `${address} could not be subscribed: ${problem}`,
      owner: address,
      error: describeError(error),
    });
    const mark = `subscribe-failed:${address}`;
    const today = isoDay(this.deps.clock.now());
    if (this.record.notices[mark] === today) return;
    await this.update((record) =>
      this.queueNotice(
        { ...record, notices: { ...record.notices, [mark]: today } },
        { ...this.noticeContext(plan, user), owner: DEFAULT_OWNER, recipients: [DEFAULT_OWNER] },
        { event: 'owner.subscription-failed', address, problem },
        `${this.accountId}/${this.userName}/subscribe-failed/${address}/${today}`,
      ),
    );
    await this.deliverNotices();
  }

  private log(
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

  private async reportFindings(plan: UserPlan, user: UserSnapshot): Promise<void> {
    const mark = `tags:${plan.findings.join('|')}`;
    if (this.record.notices[mark] !== undefined) return;
    const context = this.noticeContext(plan, user);
    // Tag problems go to the default recipients, who can fix tags.
    await this.update((record) =>
      this.queueNotice(
        { ...record, notices: { ...record.notices, [mark]: this.deps.clock.now().toISOString() } },
        { ...context, owner: DEFAULT_OWNER, recipients: [DEFAULT_OWNER] },
        { event: 'tags.invalid', findings: plan.findings },
        `${this.accountId}/${this.userName}/tags/${isoDay(this.deps.clock.now())}`,
      ),
    );
    await this.deliverNotices();
  }

  // ---------------------------------------------------------------------------------------------
  // Actions

  private async carryOut(action: PlannedAction, user: UserSnapshot, plan: UserPlan): Promise<void> {
    const now = this.deps.clock.now();
    const context = this.noticeContext(plan, user);
    switch (action.kind) {
      case 'resume':
        // Handled before planning; a resume still due here means the repair did not converge.
        throw new KeyRotationError(`rotation of ${this.userName} could not be resumed: ${action.reason}`);
      case 'forget':
        await this.update(
          (record) => ({
            ...record,
            inactiveSince: without(record.inactiveSince, action.keyIds),
            warnedKeys: without(record.warnedKeys, action.keyIds),
            reactivatedSeen: without(record.reactivatedSeen, action.keyIds),
          }),
          { action: 'ledger.tidied', detail: `${action.keyIds.join(', ')}: ${action.reason}` },
        );
        this.log('ledger.tidied', 'success', { keyId: action.keyIds.join(','), reason: action.reason });
        return;
      case 'track-inactive':
        await this.update(
          (record) => ({
            ...record,
            inactiveSince: { ...record.inactiveSince, [action.keyId]: now.toISOString() },
          }),
          { action: 'key.tracked', keyId: action.keyId, detail: action.reason },
        );
        this.log('key.tracked', 'success', { keyId: action.keyId, reason: action.reason });
        return;
      case 'note-reactivated':
        await this.update(
          (record) =>
            this.queueNotice(
              {
                ...record,
                inactiveSince: without(record.inactiveSince, [action.keyId]),
                reactivatedSeen: { ...record.reactivatedSeen, [action.keyId]: now.toISOString() },
              },
              context,
              { event: 'key.reactivated', keyId: action.keyId, reason: action.reason },
              `${this.accountId}/${this.userName}/reactivated/${action.keyId}/${now.toISOString()}`,
            ),
          { action: 'key.reactivated', keyId: action.keyId, detail: action.reason },
        );
        this.log('key.reactivated', 'success', { keyId: action.keyId, reason: action.reason });
        await this.deliverNotices();
        return;
      case 'delete':
      case 'make-room':
        await this.deleteKey(action.keyId, action.reason, context);
        return;
      case 'rotate':
        await this.rotate(action, user, plan);
        return;
      case 'deactivate':
      case 'enforce':
      case 'reap':
        await this.deactivate(action, context);
        return;
      case 'postpone': {
        const mark = `postponed:${action.keyId}`;
        const today = isoDay(now);
        this.log('key.postponed', 'skipped', {
          keyId: action.keyId,
          newKeyId: action.replacementKeyId,
          reason: action.reason,
          enforceOn: action.enforceOn,
        });
        if (this.record.notices[mark] === today) return; // at most one reminder a day
        const oldKey = user.keys.find((key) => key.accessKeyId === action.keyId);
        await this.update(
          (record) =>
            this.queueNotice(
              { ...record, notices: { ...record.notices, [mark]: today } },
              context,
              {
                event: 'key.deactivation-postponed',
                keyId: action.keyId,
                newKeyId: action.replacementKeyId,
                lastUsed: oldKey?.lastUsedDate?.toISOString() ?? 'unknown',
                enforceOn: action.enforceOn,
              },
              `${this.accountId}/${this.userName}/postponed/${action.keyId}/${today}`,
            ),
          { action: 'key.postponed', keyId: action.keyId, detail: action.reason },
        );
        await this.deliverNotices();
        return;
      }
      case 'warn':
        await this.subscribeOwners(plan, user);
        await this.update(
          (record) =>
            this.queueNotice(
              { ...record, warnedKeys: { ...record.warnedKeys, [action.keyId]: now.toISOString() } },
              context,
              {
                event: 'key.expiring',
                keyId: action.keyId,
                rotateOn: action.rotateOn,
                graceDays: this.deps.settings.graceDays,
              },
              `${this.accountId}/${this.userName}/expiring/${action.keyId}`,
            ),
          { action: 'key.warned', keyId: action.keyId, detail: action.reason },
        );
        this.log('key.warned', 'success', {
          keyId: action.keyId,
          reason: action.reason,
          owner: plan.owner.owner,
        });
        await this.deliverNotices();
        return;
      case 'conflict': {
        this.log('keys.conflict', 'skipped', { keyId: action.keyIds.join(','), reason: action.reason });
        const mark = `conflict:${action.keyIds.join(',')}`;
        if (this.record.notices[mark] !== undefined) return;
        await this.update((record) =>
          this.queueNotice(
            { ...record, notices: { ...record.notices, [mark]: now.toISOString() } },
            context,
            { event: 'keys.conflict', keyIds: action.keyIds },
            `${this.accountId}/${this.userName}/conflict/${action.keyIds.join(',')}`,
          ),
        );
        await this.deliverNotices();
        return;
      }
    }
  }

  private async deleteKey(keyId: string, reason: string, context: NoticeContext): Promise<void> {
    try {
      await this.deps.iam.deleteAccessKey(this.userName, keyId);
    } catch (error) {
      // Gone already (a retry after a timed-out delete, or deleted by hand): the outcome we wanted.
      if (!(error instanceof NoSuchKeyError)) throw error;
    }
    await this.update(
      (record) =>
        this.queueNotice(
          {
            ...record,
            inactiveSince: without(record.inactiveSince, [keyId]),
            reactivatedSeen: without(record.reactivatedSeen, [keyId]),
            warnedKeys: without(record.warnedKeys, [keyId]),
          },
          context,
          { event: 'key.deleted', keyId, reason },
          `${this.accountId}/${this.userName}/deleted/${keyId}`,
        ),
      { action: 'key.deleted', keyId, detail: reason },
    );
    this.log('key.deleted', 'success', { keyId, reason });
    this.performed.push({ kind: 'delete', keyId, detail: reason });
    await this.deliverNotices();
  }

  private async deactivate(
    action: Extract<PlannedAction, { kind: 'deactivate' | 'enforce' | 'reap' }>,
    context: NoticeContext,
  ): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.iam.updateAccessKey(this.userName, action.keyId, 'Inactive');
    const deleteOn = isoDay(dayStartAfter(now, this.deps.settings.deleteAfterDays));
    const newKeyId = 'replacementKeyId' in action ? action.replacementKeyId : undefined;
    const facts: NoticeFacts =
      action.kind === 'reap'
        ? { event: 'key.reaped', keyId: action.keyId, reason: action.reason, deleteOn }
        : {
            event: action.kind === 'enforce' ? 'key.enforced' : 'key.deactivated',
            keyId: action.keyId,
            newKeyId: newKeyId ?? '',
            deleteOn,
          };
    const auditAction: AuditAction =
      action.kind === 'reap' ? 'key.reaped' : action.kind === 'enforce' ? 'key.enforced' : 'key.deactivated';
    await this.update(
      (record) =>
        this.queueNotice(
          {
            ...record,
            inactiveSince: { ...record.inactiveSince, [action.keyId]: now.toISOString() },
            reactivatedSeen: without(record.reactivatedSeen, [action.keyId]),
          },
          context,
          facts,
          `${this.accountId}/${this.userName}/${action.kind}/${action.keyId}/${isoDay(now)}`,
        ),
      { action: auditAction, keyId: action.keyId, detail: action.reason },
    );
    this.log(auditAction, 'success', { keyId: action.keyId, newKeyId, reason: action.reason });
    this.performed.push({ kind: action.kind, keyId: action.keyId, newKeyId, detail: action.reason });
    await this.deliverNotices();
  }

  private async rotate(
    action: Extract<PlannedAction, { kind: 'rotate' }>,
    user: UserSnapshot,
    plan: UserPlan,
  ) {
    const ref = this.secretRef(user);
    const existing = await this.deps.vault.describe(ref);
    if (existing && (!existing.managedByUs || existing.pendingDeletion)) {
      await this.refuseSecret(
        ref,
        user,
        plan,
        existing.managedByUs ? 'is scheduled for deletion; restore it first' : undefined,
      );
      return;
    }
    if (existing?.rotationEnabled) {
      // Its rotation function would move AWSCURRENT/AWSPENDING under our feet (and could overwrite
      // the key owners read): nothing is written until someone turns it off.
      await this.refuseSecret(
        ref,
        user,
        plan,
        `has Secrets Manager rotation turned on, which moves the same staging labels as this service; turn it off (aws secretsmanager cancel-rotate-secret --secret-id ${ref.name}) and the next run rotates`,
        'rotation-enabled',
      );
      return;
    }
    const deletedNow = new Set(
      this.performed.filter((done) => done.kind === 'delete').map((done) => done.keyId),
    );
    const keysBefore = user.keys.map((key) => key.accessKeyId).filter((keyId) => !deletedNow.has(keyId));
    await this.subscribeOwners(plan, user);
    const startedAt = this.deps.clock.now().toISOString();
    // I1: the intent is durable before the only copy of a secret comes into existence.
    await this.update(
      (record) => ({
        ...record,
        inFlight: { oldKeyId: action.keyId, keysBefore, phase: 'intent', startedAt, reason: action.reason },
      }),
      { action: 'rotation.started', keyId: action.keyId, detail: action.reason },
    );
    this.log('rotation.started', 'success', { keyId: action.keyId, reason: action.reason });

    // The secret exists only in this response until the vault has it; it goes nowhere else.
    const { accessKeyId: newKeyId, createDate } = await this.createAndStore(ref);
    await this.update(
      (record) => ({ ...record, inFlight: { ...record.inFlight!, phase: 'stored', newKeyId } }),
      { action: 'rotation.stored', keyId: newKeyId, detail: `new key stored in ${ref.name}` },
    );
    const oldKey = user.keys.find((key) => key.accessKeyId === action.keyId);
    await this.finishStoredRotation(user, plan, { accessKeyId: newKeyId, createDate }, oldKey);
  }

  private async createAndStore(ref: SecretRef): Promise<Pick<NewAccessKey, 'accessKeyId' | 'createDate'>> {
    let created: NewAccessKey;
    try {
      created = await this.deps.iam.createAccessKey(this.userName);
    } catch (error) {
      // Refused outright (denied, limit, throttled after retries): no key exists, so the intent is
      // closed now rather than left for a later run to interpret. A timeout may have created a key:
      // that intent stays, and the next run looks for the key.
      if (error instanceof KeyRotationError && !(error instanceof TransientServiceError)) {
        await this.update((record) => ({ ...record, inFlight: undefined }), {
          action: 'rotation.rolled-back',
          detail: `CreateAccessKey failed (${describeError(error).name}); no key was created`,
        });
      }
      throw error;
    }
    let omittedReaders: readonly string[];
    try {
      ({ omittedReaders } = await this.deps.vault.store(ref, created));
    } catch (error) {
      await this.discardUnstoredKey(created.accessKeyId, error);
      throw error;
    }
    if (omittedReaders.length > 0) this.reportOmittedReaders(ref, created.accessKeyId, omittedReaders);
    return { accessKeyId: created.accessKeyId, createDate: created.createDate };
  }

  /**
   * A principal named for the secret's policy (the admin role, a reader, or one in an operator's
   * statement) does not exist, so Secrets Manager would refuse the policy: the key was stored without
   * it and the rotation goes on (the user reads their key). The finding is logged here and counted by
   * the handler, whose metric alarms to operators.
   */
  private reportOmittedReaders(ref: SecretRef, newKeyId: string, omittedReaders: readonly string[]): void {
    this.secretReadersOmitted.push(
      ...omittedReaders.filter((arn) => !this.secretReadersOmitted.includes(arn)),
    );
    const one = omittedReaders.length === 1;
    this.log('secret.reader-omitted', 'failure', {
      newKeyId,
      reason:
        `${omittedReaders.join(', ')} ${one ? 'does' : 'do'} not exist, so ${one ? 'it was' : 'they were'} left out of the policy of ${ref.name}. ` +
        'A role or user of secretAdminRoleArn or secretReaderArns cannot read the key until it exists: create it (or change the prop and redeploy) and a later store names it again. ' +
        "A unique ID (AROA..., AIDA...) is a deleted role or user that an operator's statement named: it was removed from that statement",
      secretName: ref.name,
      omittedReaders,
    });
  }

  /** The secret could not be stored, so nobody can ever use the new key: delete it (I1). */
  private async discardUnstoredKey(newKeyId: string, cause: unknown): Promise<void> {
    try {
      await this.deps.iam.deleteAccessKey(this.userName, newKeyId);
      await this.update((record) => ({ ...record, inFlight: undefined }), {
        action: 'rotation.rolled-back',
        keyId: newKeyId,
        detail: `secret could not be stored (${describeError(cause).name}); the new key was deleted`,
      });
      this.log('rotation.recovered', 'failure', {
        newKeyId,
        reason:
          'the secret could not be stored; the new key was deleted again and the old key left as it was',
        error: describeError(cause),
      });
    } catch (cleanupError) {
      // The intent stays in the ledger; the next run deletes the key (it is not in the vault).
      this.deps.logger.warn('could not delete the unstored key yet; the next run will', {
        userName: this.userName,
        newKeyId,
        error: describeError(cleanupError),
      });
    }
  }

  private async refuseSecret(
    ref: SecretRef,
    user: UserSnapshot,
    plan: UserPlan,
    problem?: string,
    kind?: 'rotation-enabled',
  ): Promise<void> {
    const reason = problem
      ? `the secret ${ref.name} ${problem}`
      : `a secret named ${ref.name} exists that this service did not create; it will not be overwritten`;
    this.log('rotation.skipped', 'skipped', { reason });
    this.performed.push({ kind: 'refused', detail: reason });
    const mark = kind ? `secret:${kind}:${ref.name}` : `secret:${ref.name}`;
    if (this.record.notices[mark] !== undefined) return;
    const now = this.deps.clock.now();
    await this.update((record) =>
      this.queueNotice(
        { ...record, notices: { ...record.notices, [mark]: now.toISOString() } },
        { ...this.noticeContext(plan, user), owner: DEFAULT_OWNER, recipients: [DEFAULT_OWNER] },
        { event: 'secret.conflict', reason },
        `${this.accountId}/${this.userName}/secret-conflict${kind ? `/${kind}` : ''}`,
      ),
    );
    await this.deliverNotices();
  }

  /** From phase `stored`: prove the stored key works, then announce and complete in one write. */
  private async finishStoredRotation(
    user: UserSnapshot,
    plan: Pick<UserPlan, 'owner'>,
    newKey: Pick<AccessKey, 'accessKeyId' | 'createDate'>,
    oldKey: AccessKey | undefined,
  ): Promise<void> {
    const inFlight = this.record.inFlight!;
    const ref = this.secretRef(user);
    const attempts = await this.verify(ref, user, newKey.accessKeyId);
    // Only a verified key becomes what owners read. A run that lost its lock meanwhile fails at the
    // ledger write below, but its promote is harmless: it is the same key the new lock holder adopts.
    await this.deps.vault.promote(ref, newKey.accessKeyId);
    const settings = this.deps.settings;
    const deactivateFrom = dayStartAfter(newKey.createDate, settings.graceDays);
    const enforceOn = oldKey
      ? maxDate(dayStartAfter(oldKey.createDate, settings.maxKeyAgeDays), deactivateFrom)
      : deactivateFrom;
    const now = this.deps.clock.now();
    await this.update(
      (record) =>
        this.queueNotice(
          {
            ...record,
            inFlight: undefined,
            rotations: [
              ...record.rotations,
              { oldKeyId: inFlight.oldKeyId, newKeyId: newKey.accessKeyId, rotatedAt: now.toISOString() },
            ].slice(-20),
          },
          this.noticeContext(plan, user),
          {
            event: 'key.rotated',
            oldKeyId: inFlight.oldKeyId,
            newKeyId: newKey.accessKeyId,
            deactivateFrom: isoDay(deactivateFrom),
            enforceOn: isoDay(enforceOn),
          },
          `${this.accountId}/${this.userName}/rotated/${newKey.accessKeyId}`,
        ),
      {
        action: 'key.rotated',
        keyId: newKey.accessKeyId,
        detail: `replaces ${inFlight.oldKeyId}; ${inFlight.reason}`,
      },
    );
    this.log('key.rotated', 'success', {
      keyId: inFlight.oldKeyId,
      newKeyId: newKey.accessKeyId,
      reason: inFlight.reason,
      secretName: ref.name,
      verifyAttempts: attempts,
    });
    this.performed.push({
      kind: 'rotate',
      keyId: inFlight.oldKeyId,
      newKeyId: newKey.accessKeyId,
      detail: inFlight.reason,
    });
    await this.deliverNotices();
  }

  /**
   * Signs STS GetCallerIdentity with the key as stored in the vault (so that what is proven is what
   * owners will read), retrying with capped exponential backoff while IAM propagates the key.
   */
  private async verify(ref: SecretRef, user: UserSnapshot, accessKeyId: string): Promise<number> {
    const credentials = await this.deps.vault.read(ref, accessKeyId);
    const { clock } = this.deps;
    const deadline = clock.now().getTime() + this.options.verifyTimeoutMs;
    let delay = 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        const identity = await this.deps.verifier.callerIdentity(credentials);
        if (identity.arn !== user.arn || identity.account !== this.accountId) {
          throw new VerificationError(
            `new key ${accessKeyId} signs as ${identity.arn} in account ${identity.account}, expected ${user.arn} in account ${this.accountId}`,
          );
        }
        return attempt;
      } catch (error) {
        const transient =
          error instanceof CredentialsNotYetValidError ||
          error instanceof ThrottledError ||
          error instanceof TransientServiceError;
        if (!transient) throw error;
        if (clock.now().getTime() + delay > deadline) {
          throw new VerificationError(
            `new key ${accessKeyId} of ${this.userName} in account ${this.accountId} was not accepted by STS within ${Math.round(this.options.verifyTimeoutMs / 1000)} s; the old key is untouched and the next run verifies again`,
            { cause: error },
          );
        }
        await clock.sleep(delay);
        delay = Math.min(delay * 2, 8000);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Repair of half-done work (crash, timeout, redelivery)

  private async resume(user: UserSnapshot): Promise<void> {
    const inFlight = this.record.inFlight;
    const ref = this.secretRef(user);
    if (inFlight?.phase === 'intent') {
      const started = new Date(inFlight.startedAt).getTime();
      const newKeys = user.keys.filter((key) => !inFlight.keysBefore.includes(key.accessKeyId));
      const described = newKeys.length > 0 ? await this.deps.vault.describe(ref) : undefined;
      const stored = new Set(
        described?.managedByUs ? described.versions.map((version) => version.accessKeyId) : [],
      );
      // A new key whose secret is in our vault is ours, whenever it was created or used: adopt it.
      const adopted = newKeys.find((key) => stored.has(key.accessKeyId));
      // Anything else is deleted only if it is surely our orphan: created within the window of the
      // intent and never used (its secret never left our process). A key created later, or one that
      // has signed a request, is somebody else's and is never touched (I3).
      const window = { from: started - 60_000, to: started + ORPHAN_WINDOW_MS };
      const candidates = newKeys.filter(
        (key) =>
          key !== adopted &&
          key.createDate.getTime() >= window.from &&
          key.createDate.getTime() <= window.to &&
          key.lastUsedDate === undefined,
      );
      for (const key of candidates) {
        const reason = 'created by an interrupted rotation whose secret was never stored; nobody can use it';
        try {
          await this.deps.iam.deleteAccessKey(this.userName, key.accessKeyId);
        } catch (error) {
          if (!(error instanceof NoSuchKeyError)) throw error;
        }
        this.log('key.deleted', 'success', { keyId: key.accessKeyId, reason });
        this.performed.push({ kind: 'recovered', keyId: key.accessKeyId, detail: reason });
      }
      if (adopted) {
        const newKeyId = adopted.accessKeyId;
        await this.update(
          (record) => ({ ...record, inFlight: { ...record.inFlight!, phase: 'stored', newKeyId } }),
          {
            action: 'rotation.recovered',
            keyId: newKeyId,
            detail: 'new key found stored in the vault; continuing',
          },
        );
      } else {
        const detail =
          candidates.length === 0
            ? 'no key was created by the interrupted rotation'
            : 'the key created by the interrupted rotation was deleted';
        await this.update((record) => ({ ...record, inFlight: undefined }), {
          action: 'rotation.recovered',
          detail,
        });
        this.log('rotation.recovered', 'success', {
          keyId: inFlight.oldKeyId,
          reason: `${detail}; rotating again`,
        });
      }
    }
    const current = this.record.inFlight;
    if (current?.phase === 'stored') {
      const newKey = user.keys.find((key) => key.accessKeyId === current.newKeyId);
      if (!newKey) {
        const detail = `new key ${current.newKeyId} no longer exists (deleted by hand?); the rotation is abandoned`;
        await this.update((record) => ({ ...record, inFlight: undefined }), {
          action: 'rotation.recovered',
          detail,
        });
        this.log('rotation.recovered', 'success', { keyId: current.oldKeyId, reason: detail });
      } else {
        this.log('rotation.recovered', 'success', {
          keyId: current.oldKeyId,
          newKeyId: current.newKeyId,
          reason: 'continuing from the stored phase',
        });
        // The policy written at the store names the rotator role of that time: after a redeploy it
        // would deny this one the value (verify) and its labels (promote), and no later run could
        // finish. Settled first; a no-op when current.
        const { omittedReaders } = await this.deps.vault.settlePolicy(ref);
        if (omittedReaders.length > 0) this.reportOmittedReaders(ref, newKey.accessKeyId, omittedReaders);
        const plan = { owner: resolveOwner(user.tags, this.deps.settings.ownerTag) };
        const oldKey = user.keys.find((key) => key.accessKeyId === current.oldKeyId);
        await this.finishStoredRotation(user, plan, newKey, oldKey);
        return; // finishStoredRotation delivered the outbox
      }
    }
    await this.deliverNotices();
  }
}

function without<T>(marks: Readonly<Record<string, T>>, keyIds: readonly string[]): Record<string, T> {
  const copy = { ...marks };
  for (const keyId of keyIds) delete copy[keyId];
  return copy;
}
