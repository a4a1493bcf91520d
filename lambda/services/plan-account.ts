/**
 * Plan one account: detect aging keys through the IAM credential report (O(1) IAM calls), screen
 * every user with the report and the ledger alone, and produce one work message per user with work.
 * Read-only: the same code serves the scheduled run and a dry run.
 *
 * - A scheduled run reads no user live: the screen decides who is queued, and the rotator reads the
 *   user live before it acts (and decides again). Its cost follows the work due: with nothing due,
 *   the report calls and the ledger's screening query (RotationLedger.screenAccount) only.
 * - A dry run, or `confirmAll`, confirms each screened user live (readUser + planUser), a few users
 *   at once, so that it reports exactly what the rotator would do (I6).
 * - Users are handled in user-name order and their messages sent as they are found, ten at a time.
 *   When the invocation runs short of time, planning stops and says where to continue.
 */
import { WORK_MESSAGE_VERSION, WorkMessage } from '../contract';
import {
  CredentialReportBusyError,
  CredentialReportUnavailableError,
  NoSuchUserError,
} from '../domain/errors';
import { CredentialReportRow, parseCredentialReport, screenUser } from '../domain/credential-report';
import type { UserLedger } from '../domain/model';
import { planUser, UserPlan } from '../domain/policy';
import type { RotationSettings } from '../domain/settings';
import { inScope } from '../domain/tags';
import { daysBetween } from '../domain/time';
import type { Clock, IamDirectory, Logger, RotationLedger, WorkQueue } from '../ports';
import { audit, describeError } from './audit';
import { readUser } from './read-user';

export interface PlanAccountOptions {
  /** How long to wait for IAM to generate the credential report before listing users instead. @default 60 s */
  readonly reportTimeoutMs: number;
  /** Confirm every user in scope, not only those that may need action (for full reports). @default false */
  readonly confirmAll: boolean;
  /** How many users are read live at once (dry runs and confirmAll). @default 8 */
  readonly concurrency: number;
}

export const DEFAULT_PLAN_OPTIONS: PlanAccountOptions = {
  reportTimeoutMs: 60_000,
  confirmAll: false,
  concurrency: 8,
};

/**
 * The time a planning run keeps in hand: with less left, it stops, sends what it found and says
 * where to continue, rather than be cut off by the function's timeout with users half-planned.
 */
export const CHECKPOINT_MARGIN_MS = 60_000;

/** Messages per send: SendMessageBatch's maximum. */
export const SEND_BATCH_SIZE = 10;

export interface PlanAccountRequest {
  readonly accountId: string;
  readonly dryRun: boolean;
  /** Continue a run that stopped for lack of time: users up to and including this name are done. */
  readonly startAfter?: string;
  /**
   * The time of the run being continued, written into its messages (the FIFO deduplication id
   * derives from it), so that a user is queued once per run however the run was split.
   */
  readonly plannedAt?: string;
}

export interface PlanAccountDeps {
  readonly iam: IamDirectory;
  readonly ledger: RotationLedger;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings: RotationSettings;
  readonly options?: Partial<PlanAccountOptions>;
  /** Where messages are sent as they are found; without it they are only returned. */
  readonly queue?: WorkQueue;
  /** Time left in this invocation (Lambda's getRemainingTimeInMillis); without it, no limit. */
  readonly timeLeftMs?: () => number;
  /** Told after each user whose live state was read (for a progress display). */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface AccountPlan {
  readonly accountId: string;
  /** The run's time (a continued run's original time), as in its messages. */
  readonly plannedAt: string;
  readonly dryRun: boolean;
  /** Where detection came from. */
  readonly source: 'credential-report' | 'user-listing';
  /** `screened`: decided from the report and the ledger alone; `confirmed`: users read live. */
  readonly mode: 'screened' | 'confirmed';
  readonly usersScanned: number;
  readonly keysScanned: number;
  /** Active keys at or past maxKeyAgeDays (the compliance figure). */
  readonly overdueKeys: number;
  /** Users whose live state was read and planned (confirmed mode only). */
  readonly users: readonly UserPlan[];
  /** Users that could not be planned (deleted mid-run), with why. */
  readonly skipped: readonly { readonly userName: string; readonly reason: string }[];
  /** Users whose live state could not be read (other than deleted ones); the others were planned. */
  readonly failures: readonly { readonly userName: string; readonly error: unknown }[];
  /** One per user with work, for the rotator (already sent when a queue was given). */
  readonly messages: readonly WorkMessage[];
  /**
   * Set when the run stopped for lack of time: the last user handled. Planning continues with the
   * users after it (request.startAfter), in a new invocation.
   */
  readonly continueAfter?: string;
}

/** One user to handle: from the report, or known only to the ledger (our unfinished work). */
interface Candidate {
  readonly row: CredentialReportRow;
  /** What the screen suggests (empty for a user confirmed only because of confirmAll). */
  readonly suggested: readonly string[];
}

export async function planAccount(request: PlanAccountRequest, deps: PlanAccountDeps): Promise<AccountPlan> {
  const options = { ...DEFAULT_PLAN_OPTIONS, ...deps.options };
  const { accountId, dryRun, startAfter } = request;
  const { settings, clock, logger } = deps;
  const now = clock.now();
  const plannedAt = request.plannedAt ?? now.toISOString();
  const confirm = dryRun || options.confirmAll;
  // A confirming run plans users with the policy, which needs whole records: read consistently.
  // A scheduled run screens with a few fields of each record, read from the ledger's screening index
  // (small items: one Query page holds thousands of users, whatever their histories). The index is
  // eventually consistent (writes reach it within about a second), and that never makes the screen
  // skip work (test: "an index that lags the last write"):
  // - the writes that decide the screen are the rotator's, made on the previous day's run, hours
  //   before this one;
  // - a write that the index does not show yet was made moments ago by a unit of work under way (a
  //   queue still draining, a manual run), which holds the user's lock: a rotator queued now could
  //   not take it anyway, a queued unit that fails is delivered again by SQS, and what a unit leaves
  //   unfinished (a rotation in flight, undelivered notices) shows in the next run;
  // - reads are read-committed: an index item lagging behind shows an earlier version of the record,
  //   its fields as they were written together (a review with the keys and clocks it was computed
  //   on). Each earlier state queues the user too: a review whose day had come (why the rotator was
  //   queued), a review of other keys (a rotation or deactivation since), fewer or more deletion
  //   clocks than inactive keys (track-inactive, forget); or no review, where the report alone
  //   decides, as before reviews existed.
  // The rotator then reads the record consistently and the user live before it acts (I6).
  const ledgers = new Map<string, UserLedger>(
    (confirm ? await deps.ledger.loadAccount(accountId) : await deps.ledger.screenAccount(accountId)).map(
      (record) => [record.userName, record],
    ),
  );

  let source: AccountPlan['source'] = 'credential-report';
  let rows: CredentialReportRow[];
  // When IAM generated the report (undefined for a live listing, which is as new as it gets).
  let reportGeneratedAt: Date | undefined;
  try {
    ({ rows, generatedAt: reportGeneratedAt } = await readCredentialReport(
      deps.iam,
      clock,
      options.reportTimeoutMs,
    ));
  } catch (error) {
    if (!(error instanceof CredentialReportUnavailableError)) throw error;
    logger.warn('credential report unavailable; listing users and keys instead', {
      error: describeError(error),
    });
    source = 'user-listing';
    rows = await listAsReportRows(deps.iam, settings, options.concurrency);
  }

  const scoped = rows.filter((row) => inScope(row.path, settings.includePaths, settings.excludePaths));
  let keysScanned = 0;
  let overdueKeys = 0;
  for (const row of scoped) {
    for (const slot of row.keys) {
      if (!slot.createDate) continue;
      keysScanned++;
      if (slot.active && daysBetween(slot.createDate, now) >= settings.maxKeyAgeDays) overdueKeys++;
    }
  }

  const candidates: Candidate[] = [];
  const listed = new Set<string>();
  for (const row of scoped) {
    listed.add(row.userName);
    const suggested = screenUser(row, ledgers.get(row.userName), settings, now, reportGeneratedAt);
    if (suggested.length > 0 || options.confirmAll) candidates.push({ row, suggested });
  }
  // Our unfinished work is queued even for a user the report no longer lists, or lists out of scope.
  for (const record of ledgers.values()) {
    if ((record.inFlight || record.outbox.length > 0) && !listed.has(record.userName)) {
      candidates.push({
        row: { userName: record.userName, arn: '', path: '/', keys: [] },
        suggested: ['resume'],
      });
    }
  }
  // Where each user stands in the report: the order the plan lists confirmed users in.
  const reportOrder = new Map(candidates.map((candidate, index) => [candidate.row.userName, index]));
  // Handled in user-name order (code units, as `startAfter` compares), so that a stopped run can continue.
  candidates.sort((a, b) => compareNames(a.row.userName, b.row.userName));
  const pending =
    startAfter === undefined
      ? candidates
      : candidates.filter((candidate) => compareNames(candidate.row.userName, startAfter) > 0);

  const users: UserPlan[] = [];
  const skipped: { userName: string; reason: string }[] = [];
  const failures: { userName: string; error: unknown }[] = [];
  const messages: WorkMessage[] = [];
  const outbox: WorkMessage[] = [];

  const queue = async (userName: string, plannedActions: readonly string[]): Promise<void> => {
    const message: WorkMessage = {
      version: WORK_MESSAGE_VERSION,
      accountId,
      userName,
      dryRun,
      plannedActions: [...plannedActions],
      plannedAt,
    };
    messages.push(message);
    outbox.push(message);
    if (deps.queue && outbox.length >= SEND_BATCH_SIZE) {
      await deps.queue.send(outbox.splice(0, SEND_BATCH_SIZE));
    }
  };

  /** Confirms one user live and queues it if the policy has work for it. */
  const confirmUser = async ({ row }: Candidate): Promise<void> => {
    let plan: UserPlan;
    try {
      const user = await readUser(deps.iam, row.userName);
      plan = planUser({ user, ledger: ledgers.get(row.userName), now, settings });
    } catch (error) {
      const record = ledgers.get(row.userName);
      // Our own unfinished business (a rotation in flight, undelivered notices) is still queued: the
      // rotator reads the user itself and closes it out.
      if (record?.inFlight || (record?.outbox.length ?? 0) > 0) await queue(row.userName, ['resume']);
      if (!(error instanceof NoSuchUserError)) {
        // One unreadable user (denied, throttled) must not stop the others: plan on, report it.
        failures.push({ userName: row.userName, error });
        logger.error('user could not be planned', {
          accountId,
          userName: row.userName,
          error: describeError(error),
        });
        return;
      }
      skipped.push({ userName: row.userName, reason: 'user no longer exists' });
      return;
    }
    users.push(plan);
    logDecision(logger, accountId, dryRun, plan);
    const record = ledgers.get(plan.userName);
    const unreported =
      plan.findings.length > 0 && record?.notices[`tags:${plan.findings.join('|')}`] === undefined;
    if (plan.actions.length > 0 || unreported) {
      await queue(
        plan.userName,
        plan.actions.length > 0 ? plan.actions.map((action) => action.kind) : ['report-findings'],
      );
    }
  };

  /** Queues one user on the screen's word alone; the rotator reads it live before it acts. */
  const queueScreened = async ({ row, suggested }: Candidate): Promise<void> => {
    audit(logger, {
      action: 'user.planned',
      accountId,
      userName: row.userName,
      dryRun,
      outcome: 'planned',
      planned: suggested.join(','),
      reason:
        'the credential report and the ledger say that work may be due; the rotator decides from live state',
    });
    await queue(row.userName, suggested);
  };

  // A run always handles at least one user before it may stop, so that a chain of continuations
  // always moves on (and ends).
  const outOfTime = (handled: number): boolean =>
    handled > 0 && deps.timeLeftMs !== undefined && deps.timeLeftMs() < CHECKPOINT_MARGIN_MS;
  const { handled, stopped } = await inOrder(
    pending,
    confirm ? Math.max(1, options.concurrency) : 1,
    outOfTime,
    async (candidate, done) => {
      if (confirm) {
        deps.onProgress?.(done, pending.length);
        await confirmUser(candidate);
      } else {
        await queueScreened(candidate);
      }
    },
  );
  if (deps.queue && outbox.length > 0) await deps.queue.send(outbox.splice(0));

  const continueAfter = stopped ? pending[handled - 1]?.row.userName : undefined;
  if (continueAfter !== undefined) {
    logger.warn('planning stopped before the invocation runs out of time; it continues after a user', {
      accountId,
      continueAfter,
      handled,
      remaining: pending.length - handled,
    });
  }
  // Confirmed users in report order, whatever order their reads finished in.
  users.sort((a, b) => (reportOrder.get(a.userName) ?? 0) - (reportOrder.get(b.userName) ?? 0));
  return {
    accountId,
    plannedAt,
    dryRun,
    source,
    mode: confirm ? 'confirmed' : 'screened',
    usersScanned: scoped.length,
    keysScanned,
    overdueKeys,
    users,
    skipped,
    failures,
    messages,
    ...(continueAfter !== undefined ? { continueAfter } : {}),
  };
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Runs `work` over `items` in order, `concurrency` at a time, taking the next item only while
 * `outOfTime` says no. Returns how many items were taken (all of them finished), and whether it
 * stopped early: every item before the `handled`-th is done, none after it was started.
 */
async function inOrder<T>(
  items: readonly T[],
  concurrency: number,
  outOfTime: (handled: number) => boolean,
  work: (item: T, index: number) => Promise<void>,
): Promise<{ handled: number; stopped: boolean }> {
  let next = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !stopped) {
      if (outOfTime(next)) {
        stopped = true;
        return;
      }
      const index = next++;
      await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return { handled: next, stopped: stopped && next < items.length };
}

function logDecision(logger: Logger, accountId: string, dryRun: boolean, plan: UserPlan): void {
  const base = { accountId, userName: plan.userName, dryRun };
  if (plan.exemption?.applies) {
    audit(logger, {
      ...base,
      action: 'rotation.skipped',
      outcome: 'skipped',
      reason: `exempt: ${plan.exemption.reason}${plan.exemption.until ? ` (until ${plan.exemption.until.toISOString().slice(0, 10)})` : ''}`,
    });
  }
  for (const action of plan.actions) {
    audit(logger, {
      ...base,
      action: 'user.planned',
      outcome: 'planned',
      planned: action.kind,
      keyId: 'keyId' in action ? action.keyId : 'keyIds' in action ? action.keyIds.join(',') : undefined,
      reason: action.reason,
    });
  }
  for (const finding of plan.findings) {
    logger.warn('user tags need attention', { accountId, userName: plan.userName, finding });
  }
}

/**
 * Generates the report (polling while IAM builds it), reads and parses it. IAM refusing to start a
 * report for lack of capacity (CredentialReportBusyError) is waited out like a report in progress;
 * past the timeout the caller lists users instead.
 */
async function readCredentialReport(
  iam: IamDirectory,
  clock: Clock,
  timeoutMs: number,
): Promise<{ rows: CredentialReportRow[]; generatedAt?: Date }> {
  const deadline = clock.now().getTime() + timeoutMs;
  let delay = 1000;
  for (;;) {
    let busy: CredentialReportBusyError | undefined;
    try {
      if ((await iam.generateCredentialReport()) === 'COMPLETE') break;
    } catch (error) {
      if (!(error instanceof CredentialReportBusyError)) throw error;
      busy = error;
    }
    if (clock.now().getTime() + delay > deadline) {
      const why = busy ? `IAM had no capacity to generate it (${busy.message})` : 'still generating';
      throw new CredentialReportUnavailableError(
        `credential report not ready within ${Math.round(timeoutMs / 1000)} s: ${why}`,
        { cause: busy },
      );
    }
    await clock.sleep(delay);
    delay = Math.min(delay * 2, 8000);
  }
  const { csv, generatedAt } = await iam.getCredentialReport();
  try {
    return { rows: parseCredentialReport(csv), generatedAt };
  } catch (error) {
    throw new CredentialReportUnavailableError('credential report could not be parsed', { cause: error });
  }
}

/**
 * The fallback when there is no report: every user and key, listed page by page. Last use is read
 * only when reaping is on (the only screen rule that needs it), so that 5,000 users cost about
 * 5,000 calls rather than 15,000. The users' keys are read `concurrency` users at once (one call per
 * user, so that 5,000 users take minutes one at a time and seconds eight at a time), and the rows
 * come back in the listing's order whatever order the reads finished in.
 */
async function listAsReportRows(
  iam: IamDirectory,
  settings: RotationSettings,
  concurrency: number,
): Promise<CredentialReportRow[]> {
  const users = (await iam.listUsers()).filter((user) =>
    inScope(user.path, settings.includePaths, settings.excludePaths),
  );
  const rows = await mapInOrder(
    users,
    concurrency,
    async (user): Promise<CredentialReportRow | undefined> => {
      let keys;
      try {
        keys = await iam.listAccessKeys(user.userName);
      } catch (error) {
        // Deleted since it was listed: not a user any more.
        if (error instanceof NoSuchUserError) return undefined;
        throw error;
      }
      const slots = [];
      for (const key of keys) {
        slots.push({
          active: key.status === 'Active',
          createDate: key.createDate,
          lastUsedDate:
            settings.reapUnusedDays !== undefined
              ? await iam.getAccessKeyLastUsed(key.accessKeyId)
              : undefined,
        });
      }
      return { userName: user.userName, arn: user.arn, path: user.path, keys: slots };
    },
  );
  return rows.filter((row): row is CredentialReportRow => row !== undefined);
}

/**
 * `work` over `items`, `concurrency` at a time, results in the items' order. When an item fails, no
 * further item is started, the ones under way finish, and the failure of the earliest failed item
 * is thrown (the same one however the calls interleave).
 */
async function mapInOrder<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  const failures = new Map<number, unknown>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && failures.size === 0) {
      const index = next++;
      try {
        results[index] = await work(items[index]!);
      } catch (error) {
        failures.set(index, error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), items.length) }, worker));
  if (failures.size > 0) throw failures.get(Math.min(...failures.keys()));
  return results;
}
