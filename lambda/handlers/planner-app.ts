/**
 * Planner (testable core; the entry point is planner.ts): invoked daily by EventBridge Scheduler (or by hand with {"dryRun": true}). Plans the
 * account it runs in and queues one message per user with work, as it finds them. A run that comes
 * close to the function's timeout stops and continues in a new invocation of the planner
 * ({"dryRun", "startAfter", "plannedAt"}), so that no run is ever cut off silently.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { METRIC, type PlannerInput } from '../contract';
import { KeyRotationError } from '../domain/errors';
import { parsePlannerInput } from '../domain/messages';
import type { Clock, IamDirectory, RotationLedger, WorkQueue } from '../ports';
import { planAccount } from '../services/plan-account';
import { describeError } from '../services/audit';
import { accountOfFunction, auditLogger, PlannerConfig } from './runtime';

/** Starts the next invocation of a run that stopped for lack of time (Lambda Invoke, asynchronous). */
export interface PlannerContinuation {
  continueRun(functionName: string, input: PlannerInput): Promise<void>;
}

export interface PlannerDeps {
  readonly config: PlannerConfig;
  readonly continuation: PlannerContinuation;
  readonly iam: IamDirectory;
  readonly ledger: RotationLedger;
  readonly queue: WorkQueue;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface PlannerResult {
  readonly accountId: string;
  readonly dryRun: boolean;
  readonly source: string;
  readonly usersScanned: number;
  readonly keysScanned: number;
  readonly overdueKeys: number;
  readonly queued: number;
  /** How many messages named each action kind (what the screen or the live plan saw due). */
  readonly actions: Readonly<Record<string, number>>;
  /** Set when the run stopped for lack of time and continues, in a new invocation, after this user. */
  readonly continueAfter?: string;
  readonly skipped: readonly { readonly userName: string; readonly reason: string }[];
  readonly failed: readonly {
    readonly userName: string;
    readonly error: { name: string; message: string };
  }[];
}

export function createPlannerHandler(deps: PlannerDeps) {
  const { logger, metrics } = deps;
  return async (event: unknown, context: Context): Promise<PlannerResult> => {
    logger.addContext(context);
    try {
      const { dryRun, startAfter, plannedAt } = parsePlannerInput(event);
      const accountId = accountOfFunction(context.invokedFunctionArn);
      if (startAfter !== undefined) {
        logger.info('continuing a planning run', { startAfter, plannedAt });
      }
      const plan = await planAccount(
        { accountId, dryRun, startAfter, plannedAt },
        {
          iam: deps.iam,
          ledger: deps.ledger,
          clock: deps.clock,
          logger: auditLogger(logger),
          settings: deps.config.settings,
          // Sent as they are found, ten at a time.
          queue: deps.queue,
          timeLeftMs: () => context.getRemainingTimeInMillis(),
        },
      );
      const actions: Record<string, number> = {};
      for (const message of plan.messages) {
        for (const kind of message.plannedActions) actions[kind] = (actions[kind] ?? 0) + 1;
      }
      if (startAfter === undefined) {
        // Figures of the whole account, once per run (a continuation would count them again).
        metrics.addMetric(METRIC.usersScanned, MetricUnit.Count, plan.usersScanned);
        metrics.addMetric(METRIC.keysScanned, MetricUnit.Count, plan.keysScanned);
        metrics.addMetric(METRIC.overdueKeys, MetricUnit.Count, plan.overdueKeys);
      }
      metrics.addMetric(METRIC.workMessages, MetricUnit.Count, plan.messages.length);
      if (plan.continueAfter !== undefined) {
        const next: PlannerInput = { dryRun, startAfter: plan.continueAfter, plannedAt: plan.plannedAt };
        await deps.continuation.continueRun(context.functionName, next);
        metrics.addMetric(METRIC.plannerContinuations, MetricUnit.Count, 1);
        logger.warn('planning run continues in a new invocation', { continuation: next });
      }
      const result: PlannerResult = {
        accountId,
        dryRun,
        source: plan.source,
        usersScanned: plan.usersScanned,
        keysScanned: plan.keysScanned,
        overdueKeys: plan.overdueKeys,
        queued: plan.messages.length,
        actions,
        ...(plan.continueAfter !== undefined ? { continueAfter: plan.continueAfter } : {}),
        skipped: plan.skipped,
        failed: plan.failures.map((failure) => ({
          userName: failure.userName,
          error: describeError(failure.error),
        })),
      };
      logger.info('account planned', { plan: result });
      if (plan.failures.length > 0 && plan.continueAfter !== undefined) {
        // Failing now would make Lambda retry this invocation, which would start a second
        // continuation: the failures are logged (with the result above and here), and the run goes on.
        logger.error('users could not be planned; the run goes on in its continuation', {
          failed: result.failed,
        });
      } else if (plan.failures.length > 0) {
        // The others are queued; fail the invocation so that the errors alarm and the retry engage.
        const names = plan.failures.map((failure) => failure.userName).join(', ');
        throw new KeyRotationError(`${plan.failures.length} user(s) could not be planned: ${names}`, {
          cause: plan.failures[0]?.error,
        });
      }
      return result;
    } catch (error) {
      logger.error('planning failed', { error: describeError(error) });
      throw error;
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}
