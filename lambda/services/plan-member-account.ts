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
import type { PlanningMessage } from '../contract';
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
import { type AccountPlan, planAccount, type PlanAccountOptions } from './plan-account';

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

/** The member role named by the error (MemberCredentials' errors carry it), if any. */
function roleArnOf(error: unknown): string | undefined {
  const roleArn = (error as { roleArn?: unknown } | null)?.roleArn;
  return typeof roleArn === 'string' ? roleArn : undefined;
}

export async function planMemberAccount(
  message: PlanningMessage,
  deps: PlanMemberAccountDeps,
): Promise<MemberAccountOutcome> {
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

async function accountFailed(
  message: PlanningMessage,
  error: unknown,
  deps: PlanMemberAccountDeps,
): Promise<MemberAccountOutcome> {
  const { accountId, dryRun, plannedAt: runId } = message;
  const retryable = isRetryableAccountError(error);
  const described = describeError(error);
  const roleArn = roleArnOf(error);
  const previous = await deps.ledger.lastAccountRun(accountId);
  // Runs in a row: a delivery of the same run again (SQS, a continuation) is not one more run.
  const consecutiveFailures =
    previous?.status === 'failed'
      ? previous.runId === runId
        ? Math.max(1, previous.consecutiveFailures)
        : previous.consecutiveFailures + 1
      : 1;
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
      }),
      [],
    );
  }
  return { status: 'failed', accountId, error, retryable, consecutiveFailures, notified: notify };
}
