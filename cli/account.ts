/**
 * The work of plan, run and report in one account, shared by the single-account commands (cli/main.ts)
 * and organization mode (cli/organization.ts), which runs it in each selected account in turn.
 */
import { hostname } from 'node:os';
import type { Logger } from '../lambda/ports';
import { AccountPlan, planAccount, PlanAccountOptions } from '../lambda/services/plan-account';
import { RotationDeps, UserOutcome } from '../lambda/services/rotate-user';
import type { CliOptions } from './args';
import type { Connection, WriteConnection } from './connect';
import { ReportCategory, ReportRow, reportRows } from './output';
import { inPool } from './pool';
import {
  firstAttempt,
  LeftBehind,
  MAX_RETRIES,
  RETRY_BACKOFF_MS,
  settleAttempts,
  unknownOutcome,
  UserResult,
} from './repair';

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** Progress is drawn only on a terminal. */
  readonly isTTY: boolean;
}

export const EXIT = { ok: 0, failure: 1, due: 2 } as const;

export function progress(io: CliIo, label: string) {
  let shown = false;
  return {
    update(done: number, total: number) {
      if (!io.isTTY || total === 0) return;
      shown = true;
      io.stderr.write(`\r${label} ${done}/${total}`);
    },
    end() {
      if (shown) io.stderr.write('\r\x1b[K');
    },
  };
}

/** The planner's options for a pass over every user in scope, `concurrency` users read at once. */
function fullPass(options: CliOptions): Partial<PlanAccountOptions> {
  return { confirmAll: true, concurrency: options.concurrency };
}

/**
 * A dry-run plan of every user in scope (not only those the report flags), with progress. `runId`
 * (organization mode) is the run's time, the same in every account.
 */
export async function readAccount(
  options: CliOptions,
  io: CliIo,
  connection: Connection,
  logger: Logger,
  label = 'reading users',
  runId?: string,
): Promise<AccountPlan> {
  const bar = progress(io, label);
  try {
    return await planAccount(
      { accountId: connection.accountId, dryRun: true, ...(runId ? { plannedAt: runId } : {}) },
      {
        iam: connection.iam,
        ledger: connection.ledger,
        clock: connection.clock,
        logger,
        settings: connection.settings,
        options: fullPass(options),
        onProgress: (done, total) => bar.update(done, total),
      },
    );
  } finally {
    bar.end();
  }
}

/** Users that could not be read (the logger said which, on stderr) make the result incomplete. */
export function reportUnread(result: AccountPlan): boolean {
  return result.failures.length > 0;
}

/** Users with an action due in a plan. */
export function usersDue(result: AccountPlan): number {
  return result.users.filter((user) => user.actions.length > 0).length;
}

/** By user name, as IAM compares them (code units; names are ASCII). */
export function byUserName(a: { readonly userName: string }, b: { readonly userName: string }): number {
  return a.userName < b.userName ? -1 : a.userName > b.userName ? 1 : 0;
}

function holderId(): string {
  return `keyrot-cli/${hostname()}/${process.pid}/${Date.now()}`;
}

export function rotationDeps(write: WriteConnection, options: CliOptions, logger: Logger): RotationDeps {
  return {
    iam: write.iam,
    verifier: write.verifier,
    vault: write.vault,
    notifier: write.notifier,
    ledger: write.ledger,
    clock: write.clock,
    logger,
    settings: write.settings,
    secretPrefix: write.secretPrefix,
    holderId: holderId(),
    options: {
      subscribeOwners: options.subscribeOwners,
      // The stack's owners have topics of their own unless it says `none` (as the notifier does).
      ownerTopics: write.resources.ownerTopicPrefix !== 'none',
    },
  };
}

/** A user that ended done: its outcome, how many attempts it took, and the failure a retry repaired. */
export type DoneUser = Extract<UserResult, { outcome: UserOutcome }>;

/**
 * A user that ended failed: the last error, and (for a user whose rotation was attempted) the
 * attempts and what it leaves behind. A user that could not be planned has neither: nothing was
 * attempted or written.
 */
export interface FailedUser {
  readonly userName: string;
  readonly error: unknown;
  readonly attempts?: number;
  readonly leftBehind?: readonly LeftBehind[];
}

export interface AppliedAccount {
  readonly done: DoneUser[];
  readonly failures: FailedUser[];
}

/** The outcomes of the users done, for the table. */
export function outcomesOf(applied: AppliedAccount): UserOutcome[] {
  return applied.done.map((user) => user.outcome);
}

/** How many users a retry finished. */
export function repairedCount(applied: AppliedAccount): number {
  return applied.done.filter((user) => user.repairedFrom !== undefined).length;
}

/**
 * run --apply in one account: a full planning pass (every user is read, not only those the
 * credential report flags, so that a run by hand also picks up what the report cannot show: keys
 * deactivated by hand, for instance), then each user with work rotated, `concurrency` at once, then
 * the users whose outcome is unknown repaired (cli/repair.ts). Done and failed users come back by
 * user name, whatever order they finished in.
 */
export async function applyAccount(
  options: CliOptions,
  io: CliIo,
  write: WriteConnection,
  logger: Logger,
  label = 'rotating users',
  runId?: string,
  /**
   * Called with the users to work on after planning and before the first of them is touched (only
   * when there is one): organization mode records the account's run here, so that a crash in the
   * middle of the account still leaves the record the schedule finishes the work from.
   */
  beforeRotating?: (userNames: readonly string[]) => Promise<void>,
  /** Organization mode: the member role, named in what a failed user leaves behind. */
  memberRoleName?: string,
): Promise<AppliedAccount> {
  const planned = await planAccount(
    { accountId: write.accountId, dryRun: false, ...(runId ? { plannedAt: runId } : {}) },
    {
      iam: write.iam,
      ledger: write.ledger,
      clock: write.clock,
      logger,
      settings: write.settings,
      options: fullPass(options),
    },
  );
  if (beforeRotating && planned.messages.length > 0) {
    await beforeRotating(planned.messages.map((message) => message.userName));
  }
  // `concurrency` users at once. Each rotation holds its user's lock in the ledger, so a user that
  // another run (the schedule, another keyrot) is working on is refused with LockHeldError: that is
  // that user's failure, reported with the others, and never stops the rest.
  const bar = progress(io, label);
  const total = planned.messages.length;
  let finished = 0;
  bar.update(0, total);
  const attempts = await inPool(planned.messages, options.concurrency, async (message) => {
    try {
      // One lock holder per user for all its attempts (see settleAttempts).
      return await firstAttempt(
        { accountId: write.accountId, userName: message.userName, dryRun: false },
        rotationDeps(write, options, logger),
      );
    } finally {
      bar.update(++finished, total);
    }
  });
  bar.end();
  // Retries come after the whole pass, so that one user waiting out its backoff holds up no other.
  // On a terminal, said, since the progress bar has ended and the waits add up to seconds.
  const retrying = attempts.filter((attempt) => 'error' in attempt && unknownOutcome(attempt.error)).length;
  if (retrying > 0 && io.isTTY) {
    io.stderr.write(
      `keyrot: ${retrying} user(s) failed with an unknown outcome; repairing (up to ${MAX_RETRIES} more attempts, ` +
        `${RETRY_BACKOFF_MS.map((ms) => `${ms / 1000} s`).join(', ')} apart)\n`,
    );
  }
  const results = await settleAttempts(attempts, options.concurrency, {
    accountId: write.accountId,
    ...(memberRoleName ? { memberRoleName } : {}),
  });
  const done: DoneUser[] = [];
  const failures: FailedUser[] = [...planned.failures];
  for (const result of results) {
    if ('outcome' in result) done.push(result);
    else failures.push(result);
  }
  done.sort(byUserName);
  failures.sort(byUserName);
  return { done, failures };
}

export interface AccountReport {
  readonly rows: ReportRow[];
  readonly counts: Record<ReportCategory, number>;
  /** Rows that make the exit code 2: over age and not exempt, postponed, or in conflict. */
  readonly findings: number;
}

/** The report's rows for one account's plan, counted by category. */
export function accountReport(result: AccountPlan, connection: Connection): AccountReport {
  const rows = reportRows(result.users, connection.settings);
  const counts: Record<ReportCategory, number> = {
    'over-policy-age': 0,
    'in-grace': 0,
    postponed: 0,
    exempt: 0,
    conflict: 0,
  };
  for (const row of rows) counts[row.category] = (counts[row.category] ?? 0) + 1;
  const exemptOverAge = new Set(
    rows.filter((row) => row.category === 'exempt').map((row) => row.accessKeyId),
  );
  const findings = rows.filter(
    (row) =>
      row.category === 'postponed' ||
      row.category === 'conflict' ||
      (row.category === 'over-policy-age' && !exemptOverAge.has(row.accessKeyId)),
  ).length;
  return { rows, counts, findings };
}
