/**
 * Organization mode: the start of a run. Discovers the accounts to cover (discoverAccounts) and
 * queues one planning message per selected account, in account-id order, ten per send. The planners
 * take them from the planning queue with bounded concurrency; this function plans nothing itself.
 *
 * An account the run no longer covers (excluded, left out of `accounts`, moved out of an included
 * OU, suspended) may still hold our unfinished work: a rotation in flight whose new key's secret
 * exists nowhere else (I1). Every account with a run record in the ledger that is not `left` and is
 * not selected gets a finish-only planning message (`finishOnly`), on which the planner queues only
 * that work and records the account `finishing`, then `left` once nothing is unfinished. A dry run
 * sends them too, as dry messages, so that it reports what the real run would finish (I6).
 *
 * One audit line tells what the run covers: the selected count, every skipped account with its
 * reason, the accounts being finished, and (as a warning) included OUs the organization does not have.
 */
import { PLANNING_MESSAGE_VERSION, type PlanningMessage } from '../contract';
import type { OrganizationSettings, SkippedAccount } from '../domain/organization';
import type {
  AccountRunLedger,
  AccountRunRecord,
  Logger,
  OrganizationDirectory,
  PlanningQueue,
} from '../ports';
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
  /** The ledger's account run records: which accounts earlier runs covered. */
  readonly runs: Pick<AccountRunLedger, 'listAccountRuns'>;
  readonly logger: Logger;
}

/** An account no longer covered whose last record is not `left`: sent a finish-only planning message. */
export interface FinishingAccount {
  readonly accountId: string;
  /** The status of its last recorded run. */
  readonly lastStatus: AccountRunRecord['status'];
  /** Its last recorded run's id. */
  readonly lastRunId: string;
}

export interface DispatchResult {
  readonly plannedAt: string;
  readonly dryRun: boolean;
  /** The accounts queued for planning, by account id. */
  readonly selected: readonly { readonly accountId: string; readonly name: string }[];
  readonly skipped: readonly SkippedAccount[];
  /** Included OUs the organization does not have. */
  readonly missingOus: readonly string[];
  /** Accounts not covered by this run that get a finish-only planning message, by account id. */
  readonly finishing: readonly FinishingAccount[];
  /** Planning messages sent (selected and finishing accounts). */
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

  // Read before anything is sent: a ledger that cannot be read fails the run with nothing half queued.
  const covered = new Set(selected.map(({ accountId }) => accountId));
  const finishing: FinishingAccount[] = (await deps.runs.listAccountRuns())
    .filter((run) => run.status !== 'left' && !covered.has(run.accountId))
    .map((run) => ({ accountId: run.accountId, lastStatus: run.status, lastRunId: run.runId }))
    .sort((a, b) => (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0));
  if (finishing.length > 0) {
    logger.warn('accounts no longer covered are sent to finish our unfinished work there, and nothing else', {
      finishing: finishing.map(({ accountId }) => accountId),
      plannedAt,
    });
  }

  const message = (accountId: string): PlanningMessage => ({
    version: PLANNING_MESSAGE_VERSION,
    accountId,
    dryRun,
    plannedAt,
  });
  const messages: PlanningMessage[] = [
    ...selected.map(({ accountId }) => message(accountId)),
    ...finishing.map(({ accountId }) => ({ ...message(accountId), finishOnly: true as const })),
  ];
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
    reason: `${selected.length} account(s) queued for planning, ${discovery.skipped.length} skipped${finishing.length > 0 ? `, ${finishing.length} no longer covered queued to finish unfinished work` : ''}${discovery.missingOus.length > 0 ? `, included OU(s) not found: ${discovery.missingOus.join(', ')}` : ''}`,
    selected: selected.length,
    skipped: discovery.skipped.map(({ accountId, reason, detail }) => ({ accountId, reason, detail })),
    finishing: finishing.map(({ accountId, lastStatus }) => ({ accountId, lastStatus })),
    missingOus: [...discovery.missingOus],
  });
  return {
    plannedAt,
    dryRun,
    selected,
    skipped: discovery.skipped,
    missingOus: discovery.missingOus,
    finishing,
    queued,
  };
}
