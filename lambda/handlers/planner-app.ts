/**
 * Planner (testable core; the entry point is planner.ts): invoked daily by EventBridge Scheduler (or by hand with {"dryRun": true}). Plans the
 * account it runs in and queues one message per user with work.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { METRIC } from '../contract';
import { KeyRotationError } from '../domain/errors';
import { parsePlannerInput } from '../domain/messages';
import type { Clock, IamDirectory, RotationLedger, WorkQueue } from '../ports';
import { planAccount } from '../services/plan-account';
import { describeError } from '../services/audit';
import { accountOfFunction, auditLogger, PlannerConfig } from './runtime';

export interface PlannerDeps {
  readonly config: PlannerConfig;
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
  readonly actions: Readonly<Record<string, number>>;
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
      const { dryRun } = parsePlannerInput(event);
      const accountId = accountOfFunction(context.invokedFunctionArn);
      const plan = await planAccount(
        { accountId, dryRun },
        {
          iam: deps.iam,
          ledger: deps.ledger,
          clock: deps.clock,
          logger: auditLogger(logger),
          settings: deps.config.settings,
        },
      );
      await deps.queue.send(plan.messages);
      const actions: Record<string, number> = {};
      for (const user of plan.users) {
        for (const action of user.actions) actions[action.kind] = (actions[action.kind] ?? 0) + 1;
      }
      metrics.addMetric(METRIC.usersScanned, MetricUnit.Count, plan.usersScanned);
      metrics.addMetric(METRIC.keysScanned, MetricUnit.Count, plan.keysScanned);
      metrics.addMetric(METRIC.overdueKeys, MetricUnit.Count, plan.overdueKeys);
      metrics.addMetric(METRIC.workMessages, MetricUnit.Count, plan.messages.length);
      const result: PlannerResult = {
        accountId,
        dryRun,
        source: plan.source,
        usersScanned: plan.usersScanned,
        keysScanned: plan.keysScanned,
        overdueKeys: plan.overdueKeys,
        queued: plan.messages.length,
        actions,
        skipped: plan.skipped,
        failed: plan.failures.map((failure) => ({
          userName: failure.userName,
          error: describeError(failure.error),
        })),
      };
      logger.info('account planned', { plan: result });
      if (plan.failures.length > 0) {
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
