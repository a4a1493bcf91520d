/**
 * Dispatcher (organization mode; the entry point is dispatcher.ts): invoked daily by EventBridge
 * Scheduler with `{"dryRun": false, "scheduledAt": "<the schedule's time>"}` (or by hand with
 * {"dryRun": true}). The run's id is the scheduled time when given, so that Lambda's retry of a failed
 * invocation (asynchronous invocations are retried with the same input) continues the same run: the
 * same member role sessions, the same work deduplication. Finds the accounts to cover (AWS Organizations, from
 * the management account or a delegated administrator) and queues one planning message per account;
 * the planners consume them with the event source's bounded concurrency. It touches no member
 * account itself, so one account's trouble can never stop the run.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { METRIC } from '../contract';
import { parseDispatcherInput } from '../domain/messages';
import type { AccountRunLedger, Clock, OrganizationDirectory, PlanningQueue } from '../ports';
import { describeError } from '../services/audit';
import { dispatchAccounts, type DispatchResult } from '../services/dispatch-accounts';
import { auditLogger, type DispatcherConfig } from './runtime';

export interface DispatcherDeps {
  readonly config: DispatcherConfig;
  readonly directory: OrganizationDirectory;
  readonly queue: PlanningQueue;
  /** The ledger's account run records (accounts earlier runs covered, to finish those left out). */
  readonly runs: Pick<AccountRunLedger, 'listAccountRuns'>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export function createDispatcherHandler(deps: DispatcherDeps) {
  const { logger, metrics } = deps;
  return async (event: unknown, context: Context): Promise<DispatchResult> => {
    logger.addContext(context);
    try {
      const { dryRun, scheduledAt } = parseDispatcherInput(event);
      const plannedAt = scheduledAt ?? deps.clock.now().toISOString();
      const result = await dispatchAccounts(
        { plannedAt, dryRun },
        {
          directory: deps.directory,
          settings: deps.config.organization,
          queue: deps.queue,
          runs: deps.runs,
          logger: auditLogger(logger),
        },
      );
      metrics.addMetric(METRIC.accountsSelected, MetricUnit.Count, result.selected.length);
      metrics.addMetric(METRIC.accountsSkipped, MetricUnit.Count, result.skipped.length);
      logger.info('accounts dispatched for planning', {
        run: {
          plannedAt: result.plannedAt,
          dryRun: result.dryRun,
          selected: result.selected.length,
          skipped: result.skipped.length,
          finishing: result.finishing.map((account) => account.accountId),
          queued: result.queued,
          missingOus: result.missingOus,
        },
      });
      return result;
    } catch (error) {
      // Discovery or the queue failed: nothing partial is worth keeping, so the invocation fails
      // (the errors alarm; the schedule's retry and dead-letter queue take it from there).
      logger.error('dispatching failed', { error: describeError(error) });
      throw error;
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}
