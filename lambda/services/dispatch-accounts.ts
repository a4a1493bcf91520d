/**
 * Organization mode: the start of a run. Discovers the accounts to cover (discoverAccounts) and
 * queues one planning message per selected account, in account-id order, ten per send. The planners
 * take them from the planning queue with bounded concurrency; this function plans nothing itself.
 * One audit line tells what the run covers: the selected count, every skipped account with its
 * reason, and (as a warning) included OUs the organization does not have.
 */
import { PLANNING_MESSAGE_VERSION, type PlanningMessage } from '../contract';
import type { OrganizationSettings, SkippedAccount } from '../domain/organization';
import type { Logger, OrganizationDirectory, PlanningQueue } from '../ports';
import { audit } from './audit';
import { discoverAccounts } from './discover-accounts';

/** Planning messages per send: SendMessageBatch's maximum. */
export const PLANNING_BATCH_SIZE = 10;

export interface DispatchRequest {
  /** The run's time, and so its id: written into every planning message. */
  readonly plannedAt: string;
  readonly dryRun: boolean;
}

export interface DispatchDeps {
  readonly directory: OrganizationDirectory;
  readonly settings: OrganizationSettings;
  readonly queue: PlanningQueue;
  readonly logger: Logger;
}

export interface DispatchResult {
  readonly plannedAt: string;
  readonly dryRun: boolean;
  /** The accounts queued for planning, by account id. */
  readonly selected: readonly { readonly accountId: string; readonly name: string }[];
  readonly skipped: readonly SkippedAccount[];
  /** Included OUs the organization does not have. */
  readonly missingOus: readonly string[];
  /** Planning messages sent. */
  readonly queued: number;
}

export async function dispatchAccounts(
  request: DispatchRequest,
  deps: DispatchDeps,
): Promise<DispatchResult> {
  const { plannedAt, dryRun } = request;
  const { logger } = deps;
  const discovery = await discoverAccounts(deps.directory, deps.settings);
  const selected = [...discovery.selected]
    .map((account) => ({ accountId: account.id, name: account.name }))
    .sort((a, b) => (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0));

  if (discovery.missingOus.length > 0) {
    logger.warn('included OUs not found in the organization: their accounts are not covered', {
      missingOus: discovery.missingOus,
      plannedAt,
    });
  }

  const messages: PlanningMessage[] = selected.map(({ accountId }) => ({
    version: PLANNING_MESSAGE_VERSION,
    accountId,
    dryRun,
    plannedAt,
  }));
  let queued = 0;
  for (let start = 0; start < messages.length; start += PLANNING_BATCH_SIZE) {
    const batch = messages.slice(start, start + PLANNING_BATCH_SIZE);
    await deps.queue.send(batch);
    queued += batch.length;
  }

  audit(logger, {
    action: 'accounts.dispatched',
    runId: plannedAt,
    dryRun,
    outcome: 'planned',
    reason: `${selected.length} account(s) queued for planning, ${discovery.skipped.length} skipped${discovery.missingOus.length > 0 ? `, included OU(s) not found: ${discovery.missingOus.join(', ')}` : ''}`,
    selected: selected.length,
    skipped: discovery.skipped.map(({ accountId, reason, detail }) => ({ accountId, reason, detail })),
    missingOus: [...discovery.missingOus],
  });
  return {
    plannedAt,
    dryRun,
    selected,
    skipped: discovery.skipped,
    missingOus: discovery.missingOus,
    queued,
  };
}
