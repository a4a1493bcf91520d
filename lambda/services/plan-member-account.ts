/**
 * Organization mode: plan one member account from its planning message. Opens the account through
 * AccountAccess (the member role, session named after the run), runs the same planAccount as one
 * account does with that account's IAM, and records how the account fared in the ledger.
 *
 * One account failing (role missing or not trusted, account suspended, STS throttled, access denied
 * on the credential report) never fails the caller: it is recorded (AccountRunRecord), logged as an
 * audit line, and told to the operators (`account.unreachable`), and the outcome says whether trying
 * again may help. A failure worth retrying is told only on the last delivery (`lastAttempt`), so that
 * a throttled STS that answers on SQS's next delivery pages nobody. Users that could not be read inside
 * an account that could be planned stay in the plan's `failures`, as in one account.
 *
 * A dry run writes nothing and publishes nothing (I6): it only reads and logs.
 */
import {
  PLANNING_MAX_RECEIVE_COUNT,
  type PlanningMessage,
  WORK_MESSAGE_VERSION,
  type WorkMessage,
} from '../contract';
import { ThrottledError, TransientServiceError } from '../domain/errors';
import { renderAccountUnreachableNotice } from '../domain/notices';
import type { RotationSettings } from '../domain/settings';
import type {
  AccountAccess,
  AccountPorts,
  AccountRunLedger,
  AccountRunRecord,
  Clock,
  Logger,
  OwnerNotifier,
  RotationLedger,
  WorkQueue,
} from '../ports';
import { AccountErrors } from './account-errors';
import { audit, describeError } from './audit';
import { type AccountPlan, planAccount, type PlanAccountOptions, SEND_BATCH_SIZE } from './plan-account';

export interface PlanMemberAccountDeps {
  readonly access: AccountAccess;
  readonly ledger: RotationLedger & AccountRunLedger;
  /** Where work messages are sent, as planAccount's. */
  readonly queue?: WorkQueue;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings: RotationSettings;
  /** The ops notice goes through it; without it none is sent. */
  readonly notifier?: OwnerNotifier;
  readonly options?: Partial<PlanAccountOptions>;
  readonly timeLeftMs?: () => number;
  readonly onProgress?: (done: number, total: number) => void;
  /** False while SQS will deliver the message again: a retryable failure is then not yet notified. @default true */
  readonly lastAttempt?: boolean;
}

export type MemberAccountOutcome =
  | { readonly status: 'planned'; readonly accountId: string; readonly plan: AccountPlan }
  | {
      /** A finish-only message: the account is no longer covered; its unfinished work was queued. */
      readonly status: 'finishing';
      readonly accountId: string;
      /** Finish-only work messages queued, one per user with unfinished work. */
      readonly messages: readonly WorkMessage[];
      /** Nothing of ours is unfinished there: recorded `left` (else `finishing`). */
      readonly left: boolean;
    }
  | {
      readonly status: 'failed';
      readonly accountId: string;
      readonly error: unknown;
      readonly retryable: boolean;
      readonly consecutiveFailures: number;
      readonly notified: boolean;
    };

/**
 * Whether an account's failure may pass by itself: STS throttled or unreachable past the SDK's
 * retries (MemberSessionUnavailableError), or any AWS call of the planning throttled or timed out.
 * A missing or untrusted role, a suspended account, a disabled Region, access denied: not until
 * someone fixes it.
 */
export function isRetryableAccountError(error: unknown): boolean {
  // MemberSessionUnavailableError is a TransientServiceError.
  return error instanceof ThrottledError || error instanceof TransientServiceError;
}

/** Whether this delivery of a planning message is the last one SQS makes (then the dead-letter queue). */
export function isLastDelivery(receiveCount: number): boolean {
  return receiveCount >= PLANNING_MAX_RECEIVE_COUNT;
}

/**
 * Whether SQS should deliver the planning message again (the planner reports it as a batch item
 * failure): the one place this is decided, for the planner handler and the in-memory organization.
 *
 * - An account failure worth retrying (STS throttled) is delivered again while deliveries are left.
 *   On the last delivery it is consumed: the failure is recorded, counted and told to operators, and
 *   the next daily run tries the account again (the dead-letter queue is for what nobody can plan).
 * - Other account failures are consumed at once (someone must fix them; the next run tries again).
 * - An account planned with users that could not be read is delivered again so that they are planned
 *   (the queue's deduplication and the rotator's lock make a repeat of the others harmless); on the
 *   last delivery SQS then gives it to the dead-letter queue, which alarms.
 */
export function redeliver(outcome: MemberAccountOutcome, receiveCount: number): boolean {
  switch (outcome.status) {
    case 'failed':
      return outcome.retryable && !isLastDelivery(receiveCount);
    case 'planned':
      return outcome.plan.failures.length > 0 && outcome.plan.continueAfter === undefined;
    case 'finishing':
      return false;
  }
}

/** The member role named by the error (MemberCredentials' errors carry it), if any. */
function roleArnOf(error: unknown): string | undefined {
  const roleArn = (error as { roleArn?: unknown } | null)?.roleArn;
  return typeof roleArn === 'string' ? roleArn : undefined;
}

export async function planMemberAccount(
  message: PlanningMessage,
  deps: PlanMemberAccountDeps,
): Promise<MemberAccountOutcome> {
  if (message.finishOnly) return finishLeftAccount(message, deps);
  const { accountId, dryRun, plannedAt, startAfter } = message;
  const runId = plannedAt;
  const errors = new AccountErrors();
  let ports: AccountPorts;
  try {
    ports = errors.watch(await deps.access.open(accountId, runId));
  } catch (error) {
    return accountFailed(message, error, deps);
  }
  let plan: AccountPlan;
  try {
    plan = await planAccount(
      { accountId, dryRun, plannedAt, ...(startAfter !== undefined ? { startAfter } : {}) },
      {
        iam: ports.iam,
        ledger: deps.ledger,
        clock: deps.clock,
        logger: deps.logger,
        settings: deps.settings,
        ...(deps.queue ? { queue: deps.queue } : {}),
        ...(deps.options ? { options: deps.options } : {}),
        ...(deps.timeLeftMs ? { timeLeftMs: deps.timeLeftMs } : {}),
        ...(deps.onProgress ? { onProgress: deps.onProgress } : {}),
      },
    );
  } catch (error) {
    // Only the account's own failures (its IAM, its credential report); the rest propagates.
    if (errors.isAccounts(error)) {
      return accountFailed(message, error, deps);
    }
    throw error;
  }

  if (!dryRun) {
    await deps.ledger.recordAccountRun({
      accountId,
      runId,
      dryRun,
      status: 'planned',
      at: deps.clock.now().toISOString(),
      queued: plan.messages.length,
      consecutiveFailures: 0,
      lastPlannedAt: plannedAt,
    });
  }
  audit(deps.logger, {
    action: 'account.planned',
    accountId,
    runId,
    dryRun,
    outcome: 'planned',
    reason: `${plan.usersScanned} user(s) screened, ${plan.messages.length} queued${plan.continueAfter !== undefined ? `; continues after ${plan.continueAfter}` : ''}`,
    queued: plan.messages.length,
    userFailures: plan.failures.length,
  });
  return { status: 'planned', accountId, plan };
}

/**
 * Runs in a row that failed for the account, this one (a failure) included.
 * - After a `failed` record: one more, unless it is the same run delivered again (SQS, a
 *   continuation), which is not one more run.
 * - After a `finishing` record: one more than it carries (see finishingFailures: the failures
 *   before it while the same work stayed unfinished, 0 if none).
 * - Otherwise (`planned`, `left`, none): the first.
 */
function failuresInARow(previous: AccountRunRecord | undefined, runId: string): number {
  switch (previous?.status) {
    case 'failed':
      return previous.runId === runId
        ? Math.max(1, previous.consecutiveFailures)
        : previous.consecutiveFailures + 1;
    case 'finishing':
      return previous.consecutiveFailures + 1;
    default:
      return 1;
  }
}

/**
 * The count a `finishing` record carries. The account could be opened, but its work is only queued,
 * not done: while users are still unfinished after a `failed` or `finishing` record, the failures
 * before are not forgiven (the count is carried, not reset to 0 and not increased), so that an account
 * whose work never gets finished keeps counting on its next failure. Nothing unfinished (`left`): 0.
 */
function finishingFailures(previous: AccountRunRecord | undefined, unfinished: readonly string[]): number {
  if (unfinished.length === 0) return 0;
  return previous?.status === 'failed' || previous?.status === 'finishing' ? previous.consecutiveFailures : 0;
}

async function accountFailed(
  message: PlanningMessage,
  error: unknown,
  deps: PlanMemberAccountDeps,
  unfinishedUsers: readonly string[] = [],
): Promise<MemberAccountOutcome> {
  const { accountId, dryRun, plannedAt: runId } = message;
  const retryable = isRetryableAccountError(error);
  const described = describeError(error);
  const roleArn = roleArnOf(error);
  const previous = await deps.ledger.lastAccountRun(accountId);
  const consecutiveFailures = failuresInARow(previous, runId);
  const notify = !dryRun && deps.notifier !== undefined && (!retryable || deps.lastAttempt !== false);

  if (!dryRun) {
    const record: AccountRunRecord = {
      accountId,
      runId,
      dryRun,
      status: 'failed',
      at: deps.clock.now().toISOString(),
      error: described,
      retryable,
      consecutiveFailures,
      ...(previous?.lastPlannedAt !== undefined ? { lastPlannedAt: previous.lastPlannedAt } : {}),
      ...(unfinishedUsers.length > 0 ? { unfinishedUsers: [...unfinishedUsers] } : {}),
    };
    await deps.ledger.recordAccountRun(record);
  }
  audit(deps.logger, {
    action: 'account.failed',
    accountId,
    runId,
    dryRun,
    outcome: 'failure',
    reason: `${described.name}: ${described.message}`,
    error: described,
    retryable,
    consecutiveFailures,
    ...(roleArn !== undefined ? { roleArn } : {}),
    ...(message.finishOnly ? { finishOnly: true, users: [...unfinishedUsers] } : {}),
    notified: notify,
  });
  if (notify) {
    // A failed publish is the central service's failure, not the account's: it propagates, so
    // that SQS delivers the message again (the record above is rewritten the same; the notice's
    // dedupeId lets subscribers drop a repeat).
    await deps.notifier.publish(
      renderAccountUnreachableNotice({
        accountId,
        runId,
        ...(roleArn !== undefined ? { roleArn } : {}),
        error: described,
        retryable,
        consecutiveFailures,
        ...(unfinishedUsers.length > 0 ? { unfinishedUsers } : {}),
      }),
      [],
    );
  }
  return { status: 'failed', accountId, error, retryable, consecutiveFailures, notified: notify };
}

/**
 * An account the run no longer covers (excluded after a rotation started there, say). The ledger's
 * records of its users say what of ours is unfinished (a rotation in flight, notices not delivered),
 * read consistently (whole records, not the screening index), since `left` is final: the dispatcher
 * sends the account nothing after it.
 *
 * - Nothing unfinished: recorded `left`, without opening the account.
 * - Else the account is opened first, as a plan opens it (one AssumeRole, session named after the
 *   run): the member role is kept there after the account leaves the selection (the StackSet
 *   retains it), but someone may have deleted it. If it cannot be opened, that is an account failure
 *   like any other (recorded `failed`, counted, retried, `account.unreachable`), naming the users
 *   whose work is unfinished; their rotation stays in flight until the account can be opened.
 * - Once open, each such user gets a finish-only work message, on which the rotator finishes that
 *   work and does nothing else (I1, I7), and the account is recorded `finishing`.
 *
 * A dry run opens the account and queues dry messages (they report what the rotator would finish),
 * and records and publishes nothing. A failure of the ledger or the queue is the service's own: it
 * propagates, SQS delivers again.
 */
async function finishLeftAccount(
  message: PlanningMessage,
  deps: PlanMemberAccountDeps,
): Promise<MemberAccountOutcome> {
  const { accountId, dryRun, plannedAt: runId } = message;
  const unfinished = (await deps.ledger.loadAccount(accountId))
    .filter((record) => record.inFlight !== undefined || record.outbox.length > 0)
    .map((record) => record.userName)
    .sort();
  if (unfinished.length > 0) {
    try {
      await deps.access.open(accountId, runId);
    } catch (error) {
      return accountFailed(message, error, deps, unfinished);
    }
  }
  const messages: WorkMessage[] = unfinished.map((userName) => ({
    version: WORK_MESSAGE_VERSION,
    accountId,
    userName,
    dryRun,
    plannedActions: ['resume'],
    plannedAt: runId,
    finishOnly: true,
  }));
  if (deps.queue) {
    for (let start = 0; start < messages.length; start += SEND_BATCH_SIZE) {
      await deps.queue.send(messages.slice(start, start + SEND_BATCH_SIZE));
    }
  }
  const left = messages.length === 0;
  if (!dryRun) {
    const previous = await deps.ledger.lastAccountRun(accountId);
    await deps.ledger.recordAccountRun({
      accountId,
      runId,
      dryRun,
      status: left ? 'left' : 'finishing',
      at: deps.clock.now().toISOString(),
      queued: messages.length,
      consecutiveFailures: finishingFailures(previous, unfinished),
      ...(previous?.lastPlannedAt !== undefined ? { lastPlannedAt: previous.lastPlannedAt } : {}),
      ...(unfinished.length > 0 ? { unfinishedUsers: unfinished } : {}),
    });
  }
  audit(deps.logger, {
    action: 'account.planned',
    accountId,
    runId,
    dryRun,
    outcome: 'planned',
    reason: left
      ? 'no longer covered by the run, and nothing of ours is unfinished there: left'
      : `no longer covered by the run: ${messages.length} user(s) with unfinished work queued to finish it, nothing else`,
    finishOnly: true,
    accountStatus: left ? 'left' : 'finishing',
    queued: messages.length,
    users: unfinished,
  });
  return { status: 'finishing', accountId, messages, left };
}
