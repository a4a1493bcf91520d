/**
 * Planner in organization mode (the entry point is planner.ts): consumes the planning queue, one
 * account per message (the event source's batch size is 1 and its MaximumConcurrency bounds how many
 * accounts are planned at once). Each account is opened through its member role and planned as in
 * one account; its users' work goes to the work queue.
 *
 * One account failing never stops the others: its failure is recorded in the ledger, logged, and
 * named in an ops notice. A failure worth trying again (STS throttled or unreachable) is reported as a
 * batch item failure so that SQS delivers the message again (AccountRetries); on the last delivery,
 * and for the others at once, it is consumed and counted (AccountFailures, also by AccountId: the
 * alarm), and the next daily run tries the account again (see redeliver). Dry runs count nothing. A
 * run that comes close to the function's timeout continues with a new planning message
 * (`startAfter`). A finish-only message (an account no longer covered) queues its unfinished work only.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ACCOUNT_DIMENSION, METRIC, PLANNING_MESSAGE_VERSION, type PlanningMessage } from '../contract';
import { InvalidMessageError } from '../domain/errors';
import { parsePlanningMessage } from '../domain/messages';
import type {
  AccountAccess,
  AccountRunLedger,
  Clock,
  OwnerNotifier,
  PlanningQueue,
  RotationLedger,
  WorkQueue,
} from '../ports';
import { describeError } from '../services/audit';
import {
  isLastDelivery,
  type MemberAccountOutcome,
  planMemberAccount,
  redeliver,
} from '../services/plan-member-account';
import { auditLogger, type PlannerConfig } from './runtime';

export interface OrganizationPlannerDeps {
  readonly config: PlannerConfig;
  readonly access: AccountAccess;
  readonly ledger: RotationLedger & AccountRunLedger;
  readonly queue: WorkQueue;
  readonly planningQueue: PlanningQueue;
  readonly notifier: OwnerNotifier;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Told each delivery's outcome (the in-memory organization of the scenarios records them). */
  readonly onOutcome?: (outcome: MemberAccountOutcome, message: PlanningMessage) => void;
}

export function createOrganizationPlannerHandler(deps: OrganizationPlannerDeps) {
  const { logger, metrics } = deps;
  const log = auditLogger(logger);

  /** True when the message should be delivered again (a batch item failure). */
  async function handleRecord(record: SQSRecord, context: Context): Promise<boolean> {
    const message = parsePlanningMessage(record.body);
    const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? '1');
    logger.appendKeys({ accountId: message.accountId, runId: message.plannedAt });
    if (message.startAfter !== undefined) {
      logger.info('continuing the planning of an account', { startAfter: message.startAfter });
    }
    const outcome = await planMemberAccount(message, {
      access: deps.access,
      ledger: deps.ledger,
      queue: deps.queue,
      clock: deps.clock,
      logger: log,
      settings: deps.config.settings,
      notifier: deps.notifier,
      timeLeftMs: () => context.getRemainingTimeInMillis(),
      lastAttempt: isLastDelivery(receiveCount),
    });
    deps.onOutcome?.(outcome, message);
    const again = redeliver(outcome, receiveCount);
    if (outcome.status === 'failed') {
      // The alarm's metric counts an account that this run gives up on, not a throttle that SQS's
      // next delivery may get past, and never a dry run.
      if (!message.dryRun && again) metrics.addMetric(METRIC.accountRetries, MetricUnit.Count, 1);
      if (!message.dryRun && !again) {
        metrics.addMetric(METRIC.accountFailures, MetricUnit.Count, 1);
        const byAccount = metrics.singleMetric();
        byAccount.addDimension(ACCOUNT_DIMENSION, message.accountId);
        byAccount.addMetric(METRIC.accountFailures, MetricUnit.Count, 1);
      }
      (message.dryRun ? logger.warn.bind(logger) : logger.error.bind(logger))(
        again
          ? 'account could not be planned: SQS delivers the message again'
          : 'account could not be planned: the other accounts go on, the next run tries it again',
        {
          reason: describeError(outcome.error).message,
          error: describeError(outcome.error),
          retryable: outcome.retryable,
          consecutiveFailures: outcome.consecutiveFailures,
          receiveCount,
          notified: outcome.notified,
          dryRun: message.dryRun,
        },
      );
      return again;
    }
    if (outcome.status === 'finishing') {
      metrics.addMetric(METRIC.workMessages, MetricUnit.Count, outcome.messages.length);
      logger.info(
        outcome.left
          ? 'account no longer covered and nothing unfinished there: left'
          : 'account no longer covered: its unfinished work is queued to be finished, nothing else',
        { finishing: { queued: outcome.messages.length, left: outcome.left, dryRun: message.dryRun } },
      );
      return again;
    }
    const { plan } = outcome;
    if (message.startAfter === undefined) {
      // Figures of the whole account, once per run (a continuation would count them again).
      metrics.addMetric(METRIC.usersScanned, MetricUnit.Count, plan.usersScanned);
      metrics.addMetric(METRIC.keysScanned, MetricUnit.Count, plan.keysScanned);
      metrics.addMetric(METRIC.overdueKeys, MetricUnit.Count, plan.overdueKeys);
    }
    metrics.addMetric(METRIC.workMessages, MetricUnit.Count, plan.messages.length);
    if (plan.continueAfter !== undefined) {
      const next: PlanningMessage = {
        version: PLANNING_MESSAGE_VERSION,
        accountId: message.accountId,
        dryRun: message.dryRun,
        plannedAt: plan.plannedAt,
        startAfter: plan.continueAfter,
      };
      await deps.planningQueue.send([next]);
      metrics.addMetric(METRIC.plannerContinuations, MetricUnit.Count, 1);
      logger.warn('planning of the account continues with a new planning message', { continuation: next });
    }
    logger.info('account planned', {
      plan: {
        accountId: plan.accountId,
        dryRun: plan.dryRun,
        source: plan.source,
        usersScanned: plan.usersScanned,
        keysScanned: plan.keysScanned,
        overdueKeys: plan.overdueKeys,
        queued: plan.messages.length,
        ...(plan.continueAfter !== undefined ? { continueAfter: plan.continueAfter } : {}),
        skipped: plan.skipped,
        failed: plan.failures.map((failure) => ({
          userName: failure.userName,
          error: describeError(failure.error),
        })),
      },
    });
    if (again) {
      // The others are queued; deliver the account again so that its failed users are planned
      // (the rotator's lock and the queue's deduplication make a repeat of the others harmless).
      logger.error('users of the account could not be planned: SQS delivers the message again', {
        failed: plan.failures.map((failure) => failure.userName),
      });
    }
    return again;
  }

  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    logger.addContext(context);
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    try {
      for (const record of event.Records) {
        try {
          if (await handleRecord(record, context)) {
            batchItemFailures.push({ itemIdentifier: record.messageId });
          }
        } catch (error) {
          batchItemFailures.push({ itemIdentifier: record.messageId });
          const invalid = error instanceof InvalidMessageError;
          if (invalid) metrics.addMetric(METRIC.invalidMessages, MetricUnit.Count, 1);
          logger.error(
            invalid
              ? 'invalid planning message: failed, it goes to the planning dead-letter queue after its retries'
              : 'planning failed: SQS delivers the message again, then it goes to the planning dead-letter queue',
            {
              messageId: record.messageId,
              receiveCount: record.attributes.ApproximateReceiveCount,
              reason: describeError(error).message,
              error: describeError(error),
            },
          );
        } finally {
          logger.removeKeys(['accountId', 'runId']);
        }
      }
    } finally {
      metrics.publishStoredMetrics();
    }
    return { batchItemFailures };
  };
}
