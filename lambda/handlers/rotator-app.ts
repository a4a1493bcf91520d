/**
 * Rotator (testable core; the entry point is rotator.ts): consumes the FIFO work queue in batches,
 * one user per message, and reports partial batch failures so that one failing user never retries
 * the others. A malformed message is logged with why and failed; after its retries it lands in the DLQ.
 *
 * Time budget: a message is started only while at least ROTATOR_USER_BUDGET_MS remain, so that one
 * user never runs into the function timeout (a timeout would redeliver the whole batch, finished users
 * included). The rest of the batch is deferred: reported as failed items, without counting them as
 * rotation failures. A deferred message's receive count still grows and after maxReceiveCount it goes
 * to the dead-letter queue, so the construct keeps the function timeout at least the batch size times
 * the budget: with users within their budget, no message is ever deferred.
 *
 * Organization mode: each message is worked on in its member account (AccountAccess). A message for
 * an account the run no longer covers (`finishOnly`, or an account the settings now leave out) only
 * finishes our unfinished work there: a rotation in flight is completed or its new key deleted, and
 * notices are delivered (I1); nothing else is changed (I7). A member role that refuses us counts as
 * an account failure (AccountFailures, plain and by AccountId) besides RotationFailures.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  ACCOUNT_DIMENSION,
  METRIC,
  ROTATOR_USER_BUDGET_MS,
  WORK_MAX_RECEIVE_COUNT,
  type WorkMessage,
} from '../contract';
import {
  InvalidMessageError,
  MemberAccountUnavailableError,
  MemberRoleAccessDeniedError,
} from '../domain/errors';
import { parseWorkMessage } from '../domain/messages';
import type {
  AccessKeyVault,
  AccountAccess,
  Clock,
  IamDirectory,
  KeyVerifier,
  OwnerNotifier,
  RotationLedger,
} from '../ports';
import { describeError } from '../services/audit';
import { PerformedAction, rotateUser, type UserOutcome } from '../services/rotate-user';
import { accountOfFunction, auditLogger, RotatorConfig } from './runtime';

export interface RotatorDeps {
  readonly config: RotatorConfig;
  /** The function's own account's IAM (one account; in organization mode, `access` is used instead). */
  readonly iam: IamDirectory;
  readonly verifier: KeyVerifier;
  /** The function's own account's secrets (one account; in organization mode, `access` is used instead). */
  readonly vault: AccessKeyVault;
  /**
   * Organization mode: each message's account, opened through its member role. Without it the
   * rotator works in its own account only and refuses a message for another.
   */
  readonly access?: AccountAccess;
  readonly notifier: OwnerNotifier;
  readonly ledger: RotationLedger;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Told what became of each well-formed message (the in-memory organization of the scenarios records it). */
  readonly onResult?: (message: WorkMessage, result: { outcome: UserOutcome } | { error: unknown }) => void;
}

const METRIC_OF_ACTION: Partial<Record<PerformedAction['kind'], string>> = {
  rotate: METRIC.keysRotated,
  deactivate: METRIC.keysDeactivated,
  enforce: METRIC.keysEnforced,
  delete: METRIC.keysDeleted,
  reap: METRIC.keysReaped,
};

export function createRotatorHandler(deps: RotatorDeps) {
  const { logger, metrics, config } = deps;
  const log = auditLogger(logger);

  /**
   * The account's member role refused us. On the message's last delivery of a real run:
   * AccountFailures, plain (the alarm's) and by AccountId; before it (SQS delivers it again) or in a
   * dry run: AccountRetries only, so that a role restored meanwhile, or a drill, pages nobody.
   */
  function countAccountFailure(
    message: WorkMessage,
    record: SQSRecord,
    count: (metric: string) => void,
  ): void {
    const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? '1');
    if (message.dryRun || receiveCount < WORK_MAX_RECEIVE_COUNT) {
      count(METRIC.accountRetries);
      return;
    }
    const { accountId } = message;
    count(METRIC.accountFailures);
    const byAccount = metrics.singleMetric();
    byAccount.addDimension(ACCOUNT_DIMENSION, accountId);
    byAccount.addMetric(METRIC.accountFailures, MetricUnit.Count, 1);
  }

  /** The IAM and secrets of the message's account. */
  async function accountOf(
    message: WorkMessage,
    context: Context,
  ): Promise<{ iam: IamDirectory; vault: AccessKeyVault }> {
    if (!deps.access || !config.organization) {
      const ownAccount = accountOfFunction(context.invokedFunctionArn);
      if (message.accountId !== ownAccount) {
        throw new InvalidMessageError(
          `message is for account ${message.accountId} but this rotator works in ${ownAccount}`,
        );
      }
      return { iam: deps.iam, vault: deps.vault };
    }
    // The run's session (its name is the run's plannedAt), opened once per account and run.
    return deps.access.open(message.accountId, message.plannedAt);
  }

  /**
   * Whether only our unfinished work may be done for the message: the planner said so (an account
   * the run no longer covers), or the settings now leave the account out (a message queued, or
   * redelivered, from before a redeploy excluded it). Refusing it instead would strand a rotation in
   * flight, an active key whose only secret is lost (I1).
   */
  function finishOnly(message: WorkMessage): boolean {
    if (message.finishOnly) return true;
    const organization = config.organization?.settings;
    return (
      organization !== undefined &&
      (organization.excludeAccounts.includes(message.accountId) ||
        (organization.accounts.length > 0 && !organization.accounts.includes(message.accountId)))
    );
  }

  async function handleRecord(
    record: SQSRecord,
    context: Context,
    count: (metric: string) => void,
  ): Promise<void> {
    const message = parseWorkMessage(record.body);
    let outcome: UserOutcome;
    try {
      outcome = await handleMessage(message, record, context, count);
    } catch (error) {
      deps.onResult?.(message, { error });
      throw error;
    }
    deps.onResult?.(message, { outcome });
  }

  async function handleMessage(
    message: WorkMessage,
    record: SQSRecord,
    context: Context,
    count: (metric: string) => void,
  ): Promise<UserOutcome> {
    // Before the account is opened, so that a failure to open it is logged with them.
    logger.appendKeys({ accountId: message.accountId, userName: message.userName });
    let ports: { iam: IamDirectory; vault: AccessKeyVault };
    try {
      ports = await accountOf(message, context);
    } catch (error) {
      if (error instanceof MemberRoleAccessDeniedError || error instanceof MemberAccountUnavailableError) {
        countAccountFailure(message, record, count);
        logger.error(
          'account could not be opened: its member role is missing, not trusted, or the account is unavailable',
          {
            reason: describeError(error).message,
            error: describeError(error),
            roleArn: error.roleArn,
          },
        );
      }
      throw error;
    }
    const { iam, vault } = ports;
    const finishing = finishOnly(message);
    if (finishing) {
      logger.info('account no longer covered: only unfinished work is finished for the user, nothing else', {
        finishOnly: true,
      });
    }
    const outcome = await rotateUser(
      { accountId: message.accountId, userName: message.userName, dryRun: message.dryRun },
      {
        iam,
        verifier: deps.verifier,
        vault,
        notifier: deps.notifier,
        ledger: deps.ledger,
        clock: deps.clock,
        logger: log,
        // Every user out of scope: the policy's first rule still resumes our unfinished work, and
        // the scope rule then decides nothing else (I1, I7).
        settings: finishing ? { ...config.settings, excludePaths: ['/'] } : config.settings,
        secretPrefix: config.secretPrefix,
        holderId: `${context.awsRequestId}/${record.messageId}`,
        options: { subscribeOwners: config.subscribeOwners },
      },
    );
    for (const action of outcome.performed) {
      const name = METRIC_OF_ACTION[action.kind];
      if (name) count(name);
    }
    for (const action of outcome.plan?.actions ?? []) {
      if (action.kind === 'postpone') count(METRIC.keysPostponed);
    }
    for (let index = 0; index < (outcome.subscriptionFailures?.length ?? 0); index++) {
      count(METRIC.ownerSubscriptionFailures);
    }
    // A reader (the admin role) left out of a secret's policy: the construct alarms on this to operators.
    for (let index = 0; index < (outcome.secretReadersOmitted?.length ?? 0); index++) {
      count(METRIC.secretReadersOmitted);
    }
    logger.info('user processed', {
      status: outcome.status,
      dryRun: outcome.dryRun,
      performed: outcome.performed.map((action) => action.kind),
    });
    return outcome;
  }

  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    logger.addContext(context);
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    // FIFO: once a message of a group fails, later ones of the same group must wait for it.
    const failedGroups = new Set<string>();
    // One figure per metric per invocation.
    const counts = new Map<string, number>();
    const count = (metric: string, value = 1) => counts.set(metric, (counts.get(metric) ?? 0) + value);
    try {
      for (const [index, record] of event.Records.entries()) {
        const group = record.attributes.MessageGroupId ?? record.messageId;
        if (failedGroups.has(group)) {
          batchItemFailures.push({ itemIdentifier: record.messageId });
          continue;
        }
        const remainingMs = context.getRemainingTimeInMillis();
        if (remainingMs < ROTATOR_USER_BUDGET_MS) {
          const deferred = event.Records.slice(index);
          batchItemFailures.push(...deferred.map((item) => ({ itemIdentifier: item.messageId })));
          count(METRIC.usersDeferred, deferred.length);
          logger.warn(
            `too little time left for another user: ${deferred.length} messages deferred, SQS delivers them again`,
            { deferred: deferred.length, remainingMs, budgetMs: ROTATOR_USER_BUDGET_MS },
          );
          break;
        }
        try {
          await handleRecord(record, context, count);
        } catch (error) {
          failedGroups.add(group);
          batchItemFailures.push({ itemIdentifier: record.messageId });
          const invalid = error instanceof InvalidMessageError;
          count(invalid ? METRIC.invalidMessages : METRIC.rotationFailures);
          logger.error(
            invalid
              ? 'invalid work message: failed, it goes to the dead-letter queue after its retries'
              : 'user failed: the message is retried, then goes to the dead-letter queue',
            {
              messageId: record.messageId,
              receiveCount: record.attributes.ApproximateReceiveCount,
              reason: describeError(error).message,
              error: describeError(error),
            },
          );
        } finally {
          logger.removeKeys(['accountId', 'userName']);
        }
      }
    } finally {
      for (const [metric, value] of counts) metrics.addMetric(metric, MetricUnit.Count, value);
      metrics.publishStoredMetrics();
    }
    return { batchItemFailures };
  };
}
