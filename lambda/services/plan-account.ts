/**
 * Plan one account: detect aging keys through the IAM credential report (O(1) IAM calls), confirm
 * live state only for users that may need action, and produce one work message per user with work.
 * Read-only: the same code serves the scheduled run and a dry run.
 */
import { WORK_MESSAGE_VERSION, WorkMessage } from '../contract';
import {
  CredentialReportBusyError,
  CredentialReportUnavailableError,
  NoSuchUserError,
} from '../domain/errors';
import { CredentialReportRow, mayNeedAction, parseCredentialReport } from '../domain/credential-report';
import type { UserLedger } from '../domain/model';
import { planUser, UserPlan } from '../domain/policy';
import type { RotationSettings } from '../domain/settings';
import { inScope } from '../domain/tags';
import { daysBetween } from '../domain/time';
import type { Clock, IamDirectory, Logger, RotationLedger } from '../ports';
import { audit, describeError } from './audit';
import { readUser } from './read-user';

export interface PlanAccountOptions {
  /** How long to wait for IAM to generate the credential report before listing users instead. @default 60 s */
  readonly reportTimeoutMs: number;
  /** Confirm every user in scope, not only those that may need action (for full reports). @default false */
  readonly confirmAll: boolean;
}

export const DEFAULT_PLAN_OPTIONS: PlanAccountOptions = { reportTimeoutMs: 60_000, confirmAll: false };

export interface PlanAccountDeps {
  readonly iam: IamDirectory;
  readonly ledger: RotationLedger;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings: RotationSettings;
  readonly options?: Partial<PlanAccountOptions>;
  /** Told after each user whose live state was read (for a progress display). */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface AccountPlan {
  readonly accountId: string;
  readonly plannedAt: string;
  readonly dryRun: boolean;
  /** Where detection came from. */
  readonly source: 'credential-report' | 'user-listing';
  readonly usersScanned: number;
  readonly keysScanned: number;
  /** Active keys at or past maxKeyAgeDays (the compliance figure). */
  readonly overdueKeys: number;
  /** Users whose live state was read and planned. */
  readonly users: readonly UserPlan[];
  /** Users that could not be planned (deleted mid-run), with why. */
  readonly skipped: readonly { readonly userName: string; readonly reason: string }[];
  /** Users whose live state could not be read (other than deleted ones); the others were planned. */
  readonly failures: readonly { readonly userName: string; readonly error: unknown }[];
  /** One per user with work, for the rotator. */
  readonly messages: readonly WorkMessage[];
}

export async function planAccount(
  request: { readonly accountId: string; readonly dryRun: boolean },
  deps: PlanAccountDeps,
): Promise<AccountPlan> {
  const options = { ...DEFAULT_PLAN_OPTIONS, ...deps.options };
  const { accountId, dryRun } = request;
  const { settings, clock, logger } = deps;
  const now = clock.now();
  const ledgers = new Map<string, UserLedger>(
    (await deps.ledger.loadAccount(accountId)).map((record) => [record.userName, record]),
  );

  let source: AccountPlan['source'] = 'credential-report';
  let rows: CredentialReportRow[];
  try {
    rows = await readCredentialReport(deps.iam, clock, options.reportTimeoutMs);
  } catch (error) {
    if (!(error instanceof CredentialReportUnavailableError)) throw error;
    logger.warn('credential report unavailable; listing users and keys instead', {
      error: describeError(error),
    });
    source = 'user-listing';
    rows = await listAsReportRows(deps.iam, settings);
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

  const users: UserPlan[] = [];
  const skipped: { userName: string; reason: string }[] = [];
  const failures: { userName: string; error: unknown }[] = [];
  const messages: WorkMessage[] = [];
  const candidates = options.confirmAll
    ? [...scoped]
    : scoped.filter((row) => mayNeedAction(row, ledgers.get(row.userName), settings, now));
  // Users the ledger knows to be mid-rotation are confirmed even if the report no longer lists them.
  for (const record of ledgers.values()) {
    if (
      (record.inFlight || record.outbox.length > 0) &&
      !candidates.some((row) => row.userName === record.userName)
    ) {
      candidates.push({ userName: record.userName, arn: '', path: '/', keys: [] });
    }
  }

  let done = 0;
  for (const row of candidates) {
    deps.onProgress?.(done++, candidates.length);
    let plan: UserPlan;
    try {
      const user = await readUser(deps.iam, row.userName);
      plan = planUser({ user, ledger: ledgers.get(row.userName), now, settings });
    } catch (error) {
      const record = ledgers.get(row.userName);
      // Our own unfinished business (a rotation in flight, undelivered notices) is still queued: the
      // rotator reads the user itself and closes it out.
      if (record?.inFlight || (record?.outbox.length ?? 0) > 0) queue(row.userName, ['resume']);
      if (!(error instanceof NoSuchUserError)) {
        // One unreadable user (denied, throttled) must not stop the others: plan on, report it.
        failures.push({ userName: row.userName, error });
        logger.error('user could not be planned', {
          accountId,
          userName: row.userName,
          error: describeError(error),
        });
        continue;
      }
      skipped.push({ userName: row.userName, reason: 'user no longer exists' });
      continue;
    }
    users.push(plan);
    logDecision(logger, accountId, dryRun, plan);
    const record = ledgers.get(plan.userName);
    const unreported =
      plan.findings.length > 0 && record?.notices[`tags:${plan.findings.join('|')}`] === undefined;
    if (plan.actions.length > 0 || unreported) {
      queue(
        plan.userName,
        plan.actions.length > 0 ? plan.actions.map((action) => action.kind) : ['report-findings'],
      );
    }
  }

  function queue(userName: string, plannedActions: string[]): void {
    messages.push({
      version: WORK_MESSAGE_VERSION,
      accountId,
      userName,
      dryRun,
      plannedActions,
      plannedAt: now.toISOString(),
    });
  }

  return {
    accountId,
    plannedAt: now.toISOString(),
    dryRun,
    source,
    usersScanned: scoped.length,
    keysScanned,
    overdueKeys,
    users,
    skipped,
    failures,
    messages,
  };
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
): Promise<CredentialReportRow[]> {
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
  const { csv } = await iam.getCredentialReport();
  try {
    return parseCredentialReport(csv);
  } catch (error) {
    throw new CredentialReportUnavailableError('credential report could not be parsed', { cause: error });
  }
}

/** The fallback when there is no report: every user and key, listed page by page. */
async function listAsReportRows(
  iam: IamDirectory,
  settings: RotationSettings,
): Promise<CredentialReportRow[]> {
  const rows: CredentialReportRow[] = [];
  for (const user of await iam.listUsers()) {
    if (!inScope(user.path, settings.includePaths, settings.excludePaths)) continue;
    let keys;
    try {
      keys = await iam.listAccessKeys(user.userName);
    } catch (error) {
      if (error instanceof NoSuchUserError) continue;
      throw error;
    }
    const slots = [];
    for (const key of keys) {
      slots.push({
        active: key.status === 'Active',
        createDate: key.createDate,
        lastUsedDate: await iam.getAccessKeyLastUsed(key.accessKeyId),
      });
    }
    rows.push({ userName: user.userName, arn: user.arn, path: user.path, keys: slots });
  }
  return rows;
}
