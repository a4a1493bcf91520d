/**
 * Organization mode of `keyrot` (--org, --accounts, --ou, --role-name): which member accounts a
 * command covers, and plan, report and run in each of them, one account after another, through the
 * account's member role. The central stack's ledger, topics and settings serve every account, as for
 * the Lambdas. An account that cannot be opened or planned is named on stderr with what to check;
 * the others go on, and the exit code says so (2; 1 still wins where a user failed).
 */
import {
  AccessDeniedError,
  ConfigError,
  MemberAccountUnavailableError,
  MemberRoleAccessDeniedError,
  MemberSessionUnavailableError,
  OrganizationParentNotFoundError,
  OrganizationsNotInUseError,
} from '../lambda/domain/errors';
import {
  type OrganizationSettings,
  resolveOrganizationSettings,
  type SkippedAccount,
} from '../lambda/domain/organization';
import type {
  AccountAccess,
  AccountPorts,
  AccountRunLedger,
  AccountRunRecord,
  Logger,
  RotationLedger,
} from '../lambda/ports';
import { AccountErrors } from '../lambda/services/account-errors';
import { describeError } from '../lambda/services/audit';
import { discoverAccounts } from '../lambda/services/discover-accounts';
import type { AccountPlan } from '../lambda/services/plan-account';
import {
  accountReport,
  AccountReport,
  applyAccount,
  AppliedAccount,
  CliIo,
  EXIT,
  outcomesOf,
  readAccount,
  repairedCount,
  reportUnread,
  usersDue,
} from './account';
import { CliOptions, OrganizationFlags, RefusedError, UsageError } from './args';
import type { Connection, Resources, WriteConnection } from './connect';
import {
  csv,
  OUTCOME_HEADERS,
  outcomeRows,
  PLAN_HEADERS,
  planRows,
  REPORT_HEADERS,
  reportCsvRows,
  table,
} from './output';
import type { ReportCategory } from './output';
import { failureJson, leftBehindLines, outcomeJson, repairedSuffix, repairLines } from './repair';
import type { Wiring } from './main';

export interface SelectedAccount {
  readonly accountId: string;
  /** The account's name in the organization ('' when named with --accounts: nothing was listed). */
  readonly name: string;
}

/** The accounts one command covers, and those it leaves out. */
export interface OrganizationScope {
  readonly memberRoleName: string;
  /** False with --accounts: the accounts were named, not discovered. */
  readonly discovered: boolean;
  readonly selected: readonly SelectedAccount[];
  readonly skipped: readonly SkippedAccount[];
  /** Included OUs the organization does not have. */
  readonly missingOus: readonly string[];
}

/**
 * The organization settings the command works with: the deployed stack's (its OrganizationSettings
 * output; the defaults without one), with --role-name, --ou or --accounts in place of the stack's.
 */
export function organizationSettingsFor(
  flags: OrganizationFlags,
  resources: Pick<Resources, 'organizationJson'>,
): OrganizationSettings {
  let fromStack: unknown = {};
  if (resources.organizationJson !== undefined) {
    try {
      fromStack = JSON.parse(resources.organizationJson);
    } catch (error) {
      throw new UsageError(
        `the stack output OrganizationSettings is not JSON (${error instanceof Error ? error.message : String(error)}); is it the iam-key-rotation stack?`,
      );
    }
  }
  const settings = resolveOrganizationSettings(fromStack);
  return {
    ...settings,
    ...(flags.memberRoleName !== undefined ? { memberRoleName: flags.memberRoleName } : {}),
    // --ou and --accounts each replace the stack's way of choosing accounts; its excludes still hold
    // for --ou (they are discovery's rules), while --accounts names accounts outright.
    ...(flags.includeOus ? { includeOus: flags.includeOus, accounts: [] } : {}),
    ...(flags.accounts ? { accounts: flags.accounts, includeOus: [] } : {}),
  };
}

/** Why discovery failed, with what to do about it. */
function discoveryRefusal(error: unknown): RefusedError | undefined {
  const { name, message } = describeError(error);
  const noDiscovery = 'or name the accounts with --accounts ID,ID (no discovery)';
  if (error instanceof OrganizationsNotInUseError) {
    return new RefusedError(
      `cannot list the organization's accounts: ${name}: ${message}. The account of your credentials is in no organization: run keyrot with credentials of the management account or a delegated administrator, ${noDiscovery}. Nothing was changed`,
    );
  }
  if (error instanceof AccessDeniedError) {
    return new RefusedError(
      `cannot list the organization's accounts: ${name}: ${message}. Discovery calls organizations:ListAccounts, ListAccountsForParent, ListChildren and ListTagsForResource with your own credentials, which only the management account or a delegated administrator may call: run keyrot there with those permissions, ${noDiscovery}. Nothing was changed`,
    );
  }
  if (error instanceof OrganizationParentNotFoundError) {
    return new RefusedError(
      `an excluded OU is not in the organization: ${message}. Excluded OUs fail closed (their accounts could otherwise be rotated): correct the stack's organization.excludeOus and redeploy, ${noDiscovery}. Nothing was changed`,
    );
  }
  return undefined;
}

/** The accounts to cover: named with --accounts, else discovered with the operator's credentials. */
export async function selectScope(
  options: CliOptions,
  connection: Connection,
  wiring: Wiring,
): Promise<OrganizationScope> {
  const flags = options.organization!;
  const settings = organizationSettingsFor(flags, connection.resources);
  if (flags.accounts) {
    return {
      memberRoleName: settings.memberRoleName,
      discovered: false,
      selected: flags.accounts.map((accountId) => ({ accountId, name: '' })),
      skipped: [],
      missingOus: [],
    };
  }
  if (!wiring.organization) throw new RefusedError('this keyrot cannot list an organization');
  const directory = wiring.organization(connection, options);
  let discovery;
  try {
    discovery = await discoverAccounts(directory, settings);
  } catch (error) {
    throw discoveryRefusal(error) ?? error;
  }
  return {
    memberRoleName: settings.memberRoleName,
    discovered: true,
    selected: discovery.selected.map((account) => ({ accountId: account.id, name: account.name })),
    skipped: discovery.skipped,
    missingOus: discovery.missingOus,
  };
}

/** Where the member role of an account is, as the messages name it. */
function roleArnIn(connection: Connection, accountId: string, memberRoleName: string): string {
  const partition = /^arn:(aws[a-z-]*):/.exec(connection.caller.arn)?.[1] ?? 'aws';
  return `arn:${partition}:iam::${accountId}:role/${memberRoleName}`;
}

function accountLabel(account: SelectedAccount): string {
  return account.name ? `${account.accountId} (${account.name})` : account.accountId;
}

/** What to check for an account that could not be opened or planned, in the operator's terms. */
function whatToCheck(error: unknown, roleArn: string, connection: Connection, accountId: string): string {
  const retry = `keyrot ... --accounts ${accountId}`;
  if (error instanceof MemberSessionUnavailableError) {
    return `STS throttled or did not answer after retries: try this account again later (${retry})`;
  }
  if (error instanceof MemberAccountUnavailableError) {
    return `STS is not active in this Region for the account: activate its regional STS endpoint, or exclude the account`;
  }
  if (error instanceof MemberRoleAccessDeniedError) {
    return (
      `check that ${roleArn} exists (the member stack or the StackSet's instance in that account), that its ` +
      `trust policy lets in the role you run keyrot as (${connection.caller.arn}; it trusts the stack's planner, ` +
      `rotator and secret admin role: run keyrot as the admin role, or give --role-name), and that the account is ACTIVE`
    );
  }
  return (
    `the member role ${roleArn} was assumed or tried, but the account could not be read: check the role's ` +
    `permissions there (the member stack is current with the central stack), and that the account is ACTIVE; then ${retry}`
  );
}

export type AccountRun<T> =
  | (SelectedAccount & { readonly status: 'planned'; readonly result: T })
  | (SelectedAccount & { readonly status: 'unreachable'; readonly error: unknown });

/**
 * `work` in each selected account, one after another, with the account's own IAM and vault. An
 * account that cannot be opened, or whose own IAM or vault fails (AccountErrors tells them apart), is
 * named on stderr with what to check, and the next one goes on. Anything else (the central ledger
 * refused or throttled, a mistake of the command itself, a bug) is no account's fault: it stops the
 * whole run as a failure, rather than be blamed on one account after another.
 */
async function eachAccount<T>(
  scope: OrganizationScope,
  access: AccountAccess,
  runId: string,
  io: CliIo,
  connection: Connection,
  work: (ports: AccountPorts, account: SelectedAccount) => Promise<T>,
): Promise<AccountRun<T>[]> {
  const runs: AccountRun<T>[] = [];
  for (const account of scope.selected) {
    const errors = new AccountErrors();
    try {
      let ports: AccountPorts;
      try {
        ports = await access.open(account.accountId, runId);
      } catch (error) {
        // Opening fails because of the account (its role, its session), unless the command itself is wrong.
        if (!(error instanceof UsageError || error instanceof RefusedError || error instanceof ConfigError)) {
          errors.mark(error);
        }
        throw error;
      }
      runs.push({ ...account, status: 'planned', result: await work(errors.watch(ports), account) });
    } catch (error) {
      if (!errors.isAccounts(error)) throw error;
      const { name, message } = describeError(error);
      const roleArn = roleArnIn(connection, account.accountId, scope.memberRoleName);
      io.stderr.write(
        `keyrot: account ${accountLabel(account)} unreachable: ${name}: ${message}\n` +
          `keyrot:   ${whatToCheck(error, roleArn, connection, account.accountId)}` +
          `${scope.selected.length > 1 ? '; the other accounts go on' : ''}\n`,
      );
      runs.push({ ...account, status: 'unreachable', error });
    }
  }
  return runs;
}

/** The connection for one member account: its IAM, with the central ledger, settings and clock. */
export function memberConnection(connection: Connection, ports: AccountPorts): Connection {
  return { ...connection, accountId: ports.accountId, iam: ports.iam };
}

/** The write side for one member account: its IAM and vault, with the central ledger, notifier, verifier. */
export function memberWriting(write: WriteConnection, ports: AccountPorts): WriteConnection {
  return { ...write, accountId: ports.accountId, iam: ports.iam, vault: ports.vault };
}

/** The member account access for the run, or a refusal when this keyrot has none. */
export function accessFor(
  wiring: Wiring,
  connection: Connection,
  options: CliOptions,
  memberRoleName: string,
) {
  if (!wiring.accountAccess) throw new RefusedError('this keyrot cannot open member accounts');
  return wiring.accountAccess(connection, options, memberRoleName);
}

/** The ledger's account-run records, when the connection's ledger keeps them (DynamoLedger does). */
export function accountRunsOf(ledger: RotationLedger): AccountRunLedger | undefined {
  const candidate = ledger as Partial<AccountRunLedger>;
  return typeof candidate.lastAccountRun === 'function' && typeof candidate.recordAccountRun === 'function'
    ? (candidate as AccountRunLedger)
    : undefined;
}

/**
 * The account-run records of a command that writes in member accounts. --apply always has the
 * stack's ledger (forWriting requires the table), which keeps them; a ledger that does not is
 * refused before any account is opened, since without the record a rotation the CLI leaves
 * unfinished in an account the schedule does not cover would never be finished (I1).
 */
export function requireAccountRuns(ledger: RotationLedger, command: string): AccountRunLedger {
  const runs = accountRunsOf(ledger);
  if (!runs) {
    throw new RefusedError(
      `${command} --apply in member accounts needs a ledger that records account runs (the stack's DynamoDB table): pass --stack NAME or --table NAME. Nothing was changed`,
    );
  }
  return runs;
}

/**
 * Records that this keyrot run works in a member account (--apply), before it touches anything
 * there: status `planned` under the CLI run's id, `queued` = the users it is about to work on. The
 * schedule's dispatcher sends a finish-only planning message to every account with a record that is
 * not `left` and that it does not select, so that a rotation the CLI leaves unfinished (a crash, a
 * failure, Ctrl-C) in an account outside the schedule's selection (--accounts X, an OU outside the
 * settings) is still finished by the service (I1).
 *
 * Which record wins: the CLI's replaces any record but a `failed` one. `failed` is kept as it is, so
 * that an account the schedule cannot reach stays visible with its run of failures (a `failed`
 * record is never `left`, so the dispatcher still covers the account's unfinished work). A `left`
 * record is replaced on purpose: the CLI may leave unfinished work there again. A `planned` or
 * `finishing` record of the schedule (even of a later run) is replaced by another that is not
 * `left`, which keeps the dispatcher covering the account; the next scheduled run writes its own.
 * The read and the write are not one atomic step: a `failed` record written by the schedule in
 * between is replaced by `planned`, which loses that failure's count until the next failing run,
 * never the account's coverage.
 */
export async function recordCliAccountRun(
  runs: AccountRunLedger,
  accountId: string,
  runId: string,
  userNames: readonly string[],
  now: Date,
): Promise<AccountRunRecord | undefined> {
  const previous = await runs.lastAccountRun(accountId);
  if (previous?.status === 'failed') return undefined;
  const record: AccountRunRecord = {
    accountId,
    runId,
    dryRun: false,
    status: 'planned',
    at: now.toISOString(),
    queued: userNames.length,
    consecutiveFailures: 0,
    lastPlannedAt: runId,
  };
  await runs.recordAccountRun(record);
  return record;
}

/** The run's id: its start time, the member role's session name in every account. */
export function runIdOf(connection: Connection): string {
  return connection.clock.now().toISOString();
}

interface Prepared {
  readonly scope: OrganizationScope;
  readonly access: AccountAccess;
  readonly runId: string;
}

async function prepare(options: CliOptions, connection: Connection, wiring: Wiring): Promise<Prepared> {
  const scope = await selectScope(options, connection, wiring);
  return {
    scope,
    access: accessFor(wiring, connection, options, scope.memberRoleName),
    runId: runIdOf(connection),
  };
}

/** An unreachable account in --json: why, never more (error messages carry no secret material). */
function unreachableJson(run: AccountRun<unknown> & { status: 'unreachable' }) {
  return { accountId: run.accountId, name: run.name, status: run.status, error: describeError(run.error) };
}

function accountCounts<T>(scope: OrganizationScope, runs: readonly AccountRun<T>[]) {
  return {
    accountsSelected: scope.selected.length,
    accountsSkipped: scope.skipped.length,
    accountsUnreachable: runs.filter((run) => run.status === 'unreachable').length,
  };
}

function planned<T>(runs: readonly AccountRun<T>[]) {
  return runs.filter(
    (run): run is SelectedAccount & { status: 'planned'; result: T } => run.status === 'planned',
  );
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}

/** The text lines that follow a table: skipped accounts by reason, and missing OUs. */
function scopeLines(scope: OrganizationScope): string {
  const lines: string[] = [];
  if (scope.skipped.length > 0) {
    const byReason = new Map<string, number>();
    for (const account of scope.skipped)
      byReason.set(account.reason, (byReason.get(account.reason) ?? 0) + 1);
    lines.push(
      `skipped accounts: ${[...byReason].map(([reason, count]) => `${count} ${reason}`).join(', ')} (--json lists them)`,
    );
  }
  for (const ou of scope.missingOus) lines.push(`included OU ${ou} is not in the organization`);
  return lines.map((line) => `${line}\n`).join('');
}

function warnMissingOus(io: CliIo, scope: OrganizationScope): void {
  for (const ou of scope.missingOus) {
    io.stderr.write(
      `keyrot: warning: included OU ${ou} is not in the organization: the accounts under it (if any) are not covered; check --ou or the stack's organization.includeOus\n`,
    );
  }
}

function organizationLine(
  scope: OrganizationScope,
  runs: readonly AccountRun<unknown>[],
  rest: string,
): string {
  const counts = accountCounts(scope, runs);
  return (
    `organization: ${counts.accountsSelected} account(s) selected, ${counts.accountsSkipped} skipped, ` +
    `${counts.accountsUnreachable} unreachable; ${rest}\n`
  );
}

/** 2 when an account was unreachable or an included OU is missing: the run did not cover them. */
function incomplete(scope: OrganizationScope, runs: readonly AccountRun<unknown>[]): boolean {
  return scope.missingOus.length > 0 || runs.some((run) => run.status === 'unreachable');
}

export async function planOrganization(
  options: CliOptions,
  io: CliIo,
  connection: Connection,
  logger: Logger,
  wiring: Wiring,
): Promise<number> {
  const { scope, access, runId } = await prepare(options, connection, wiring);
  warnMissingOus(io, scope);
  const runs = await eachAccount(scope, access, runId, io, connection, (ports, account) =>
    readAccount(
      options,
      io,
      memberConnection(connection, ports),
      logger,
      `reading users in ${account.accountId}`,
      runId,
    ),
  );
  const done = planned(runs);
  const maxKeyAgeDays = connection.settings.maxKeyAgeDays;
  const summary = {
    ...accountCounts(scope, runs),
    usersScanned: sum(done, (run) => run.result.usersScanned),
    keysScanned: sum(done, (run) => run.result.keysScanned),
    overdueKeys: sum(done, (run) => run.result.overdueKeys),
    usersWithActionsDue: sum(done, (run) => usersDue(run.result)),
  };
  if (options.json) {
    const accounts = runs.map((run) => {
      if (run.status === 'unreachable') return unreachableJson(run);
      const failures = run.result.failures.map(({ userName, error }) => ({
        userName,
        error: describeError(error),
      }));
      const { accountId, ...plan } = run.result;
      return { accountId, name: run.name, status: run.status, ...plan, failures };
    });
    io.stdout.write(
      `${JSON.stringify(
        {
          runId,
          memberRoleName: scope.memberRoleName,
          accounts,
          skipped: scope.skipped,
          missingOus: scope.missingOus,
          summary,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    const rows = done.flatMap((run) => planRows(run.result.users).map((row) => [run.accountId, ...row]));
    io.stdout.write(table(['ACCOUNT', ...PLAN_HEADERS], rows));
    io.stdout.write('\n');
    for (const run of runs) io.stdout.write(planTotals(run, maxKeyAgeDays));
    io.stdout.write(
      organizationLine(
        scope,
        runs,
        `${summary.usersScanned} users, ${summary.keysScanned} keys, ${summary.overdueKeys} over ${maxKeyAgeDays} days; ` +
          `${summary.usersWithActionsDue} user(s) with actions due`,
      ),
    );
    io.stdout.write(scopeLines(scope));
  }
  if (done.some((run) => reportUnread(run.result))) return EXIT.failure;
  return summary.usersWithActionsDue > 0 || incomplete(scope, runs) ? EXIT.due : EXIT.ok;
}

function planTotals(run: AccountRun<AccountPlan>, maxKeyAgeDays: number): string {
  if (run.status === 'unreachable') {
    return `account ${accountLabel(run)}: unreachable (${describeError(run.error).name}; see stderr)\n`;
  }
  const result = run.result;
  const lines = [
    `account ${accountLabel(run)}: ${result.usersScanned} users, ${result.keysScanned} keys, ` +
      `${result.overdueKeys} over ${maxKeyAgeDays} days; ${usersDue(result)} user(s) with actions due ` +
      `(from the ${result.source})`,
    ...result.skipped.map((skipped) => `skipped ${run.accountId}/${skipped.userName}: ${skipped.reason}`),
  ];
  return lines.map((line) => `${line}\n`).join('');
}

export async function reportOrganization(
  options: CliOptions,
  io: CliIo,
  connection: Connection,
  logger: Logger,
  wiring: Wiring,
): Promise<number> {
  const { scope, access, runId } = await prepare(options, connection, wiring);
  warnMissingOus(io, scope);
  const runs = await eachAccount(
    scope,
    access,
    runId,
    io,
    connection,
    async (ports, account): Promise<{ plan: AccountPlan; report: AccountReport }> => {
      const member = memberConnection(connection, ports);
      const plan = await readAccount(
        options,
        io,
        member,
        logger,
        `reading users in ${account.accountId}`,
        runId,
      );
      return { plan, report: accountReport(plan, member) };
    },
  );
  const done = planned(runs);
  const counts: Record<ReportCategory, number> = {
    'over-policy-age': 0,
    'in-grace': 0,
    postponed: 0,
    exempt: 0,
    conflict: 0,
  };
  for (const run of done) {
    for (const [category, count] of Object.entries(run.result.report.counts)) {
      counts[category as ReportCategory] += count;
    }
  }
  const summary = {
    ...accountCounts(scope, runs),
    usersScanned: sum(done, (run) => run.result.plan.usersScanned),
    keysScanned: sum(done, (run) => run.result.plan.keysScanned),
    counts,
  };
  if (options.format === 'json') {
    const accounts = runs.map((run) =>
      run.status === 'unreachable'
        ? unreachableJson(run)
        : {
            accountId: run.accountId,
            name: run.name,
            status: run.status,
            usersScanned: run.result.plan.usersScanned,
            keysScanned: run.result.plan.keysScanned,
            counts: run.result.report.counts,
            rows: run.result.report.rows,
          },
    );
    const document = {
      generatedAt: runId,
      maxKeyAgeDays: connection.settings.maxKeyAgeDays,
      accounts,
      skipped: scope.skipped,
      missingOus: scope.missingOus,
      summary,
    };
    io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else {
    // The CSV stays CSV (an accountId column first); the organization's totals go to stderr.
    const rows = done.flatMap((run) =>
      reportCsvRows(run.result.report.rows).map((row) => [run.accountId, ...row]),
    );
    io.stdout.write(csv(['accountId', ...REPORT_HEADERS], rows));
    const categories = Object.entries(counts)
      .map(([category, count]) => `${count} ${category}`)
      .join(', ');
    io.stderr.write(
      `keyrot: ${organizationLine(scope, runs, `${summary.usersScanned} users, ${summary.keysScanned} keys; ${categories}`)}`,
    );
    if (scope.skipped.length > 0) io.stderr.write(`keyrot: ${scopeLines({ ...scope, missingOus: [] })}`);
  }
  if (done.some((run) => reportUnread(run.result.plan))) return EXIT.failure;
  const findings = sum(done, (run) => run.result.report.findings);
  return findings > 0 || incomplete(scope, runs) ? EXIT.due : EXIT.ok;
}

export async function runOrganization(
  options: CliOptions,
  io: CliIo,
  connection: Connection,
  logger: Logger,
  wiring: Wiring,
): Promise<number> {
  if (!options.apply) return planOrganization(options, io, connection, logger, wiring);
  // Refused before any account is opened: what is missing, or the wrong identity to write secrets.
  const write = wiring.forWriting(connection, options, 'run');
  const accountRuns = requireAccountRuns(write.ledger, 'run');
  const { scope, access, runId } = await prepare(options, connection, wiring);
  warnMissingOus(io, scope);
  const runs = await eachAccount(scope, access, runId, io, connection, (ports, account) =>
    applyAccount(
      options,
      io,
      memberWriting(write, ports),
      logger,
      `rotating users in ${account.accountId}`,
      runId,
      // A failure to record is the central ledger's: it stops the run before the account is touched.
      async (userNames) => {
        await recordCliAccountRun(accountRuns, account.accountId, runId, userNames, write.clock.now());
      },
      scope.memberRoleName,
    ),
  );
  const done = planned(runs);
  // Repaired users and what failed users leave behind, named with their account: on stderr in both modes.
  for (const run of done) {
    for (const user of run.result.done)
      io.stderr.write(repairLines(user, `${run.accountId}/${user.userName}`));
    for (const user of run.result.failures) {
      io.stderr.write(leftBehindLines(user.leftBehind ?? [], `${run.accountId}/${user.userName}`));
    }
  }
  const summary = {
    ...accountCounts(scope, runs),
    usersDone: sum(done, (run) => run.result.done.length),
    usersFailed: sum(done, (run) => run.result.failures.length),
  };
  if (options.json) {
    const accounts = runs.map((run) => {
      if (run.status === 'unreachable') return unreachableJson(run);
      return {
        accountId: run.accountId,
        name: run.name,
        status: run.status,
        outcomes: run.result.done.map(outcomeJson),
        failures: run.result.failures.map(failureJson),
      };
    });
    io.stdout.write(
      `${JSON.stringify({ runId, accounts, skipped: scope.skipped, missingOus: scope.missingOus, summary }, null, 2)}\n`,
    );
  } else {
    const rows = done.flatMap((run) =>
      outcomeRows(outcomesOf(run.result)).map((row) => [run.accountId, ...row]),
    );
    io.stdout.write(table(['ACCOUNT', ...OUTCOME_HEADERS], rows));
    for (const run of done) {
      for (const { userName, error } of run.result.failures) {
        const { name, message } = describeError(error);
        io.stdout.write(`FAILED ${run.accountId}/${userName}: ${name}: ${message}\n`);
      }
    }
    io.stdout.write('\n');
    for (const run of runs) io.stdout.write(applyTotals(run));
    const repaired = sum(done, (run) => repairedCount(run.result));
    io.stdout.write(
      organizationLine(
        scope,
        runs,
        `${summary.usersDone} user(s) done, ${summary.usersFailed} failed${repairedSuffix(repaired)}`,
      ),
    );
    io.stdout.write(scopeLines(scope));
  }
  if (summary.usersFailed > 0) return EXIT.failure;
  return incomplete(scope, runs) ? EXIT.due : EXIT.ok;
}

function applyTotals(run: AccountRun<AppliedAccount>): string {
  if (run.status === 'unreachable') {
    return `account ${accountLabel(run)}: unreachable (${describeError(run.error).name}; see stderr)\n`;
  }
  const { done, failures } = run.result;
  return `account ${accountLabel(run)}: ${done.length} user(s) done, ${failures.length} failed${repairedSuffix(repairedCount(run.result))}\n`;
}

/**
 * rotate --accounts ID: the one member account, opened through its member role. Undefined (after
 * saying why on stderr) when it cannot be opened.
 */
export async function openOneAccount(
  options: CliOptions,
  io: CliIo,
  connection: Connection,
  wiring: Wiring,
): Promise<{ ports: AccountPorts; runId: string; memberRoleName: string } | undefined> {
  const { scope, access, runId } = await prepare(options, connection, wiring);
  const runs = await eachAccount(scope, access, runId, io, connection, (ports) => Promise.resolve(ports));
  const run = runs[0];
  return run?.status === 'planned'
    ? { ports: run.result, runId, memberRoleName: scope.memberRoleName }
    : undefined;
}
